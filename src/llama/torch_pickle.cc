#include "llama/torch_pickle.h"

#include <cstring>
#include <memory>
#include <unordered_map>

#include "core/error.h"

namespace tulu {

namespace {

// Values the machine can hold. Containers are sealed once placed inside another value and
// may not be mutated afterwards: pickles of state dicts never need that, and it rules out
// reference cycles (leaks) by construction. Depth is bounded so that destroying a value
// never recurses deeply.
struct Value;
using ValuePtr = std::shared_ptr<Value>;

struct Value {
  enum class Kind { None, Bool, Int, String, Tuple, List, Dict, Global, Storage, Tensor };
  Kind kind = Kind::None;
  int64_t number = 0;             // Int, Bool
  std::string text;               // String; Global "module.name"
  std::vector<ValuePtr> items;    // Tuple, List; Dict as key, value, key, value...
  PickledTensor tensor;           // Storage (key, dtype, numel), Tensor
  bool sealed = false;
  int depth = 1;
};

constexpr int kMaxDepth = 64;
constexpr size_t kMaxStack = 1 << 20;
constexpr size_t kMaxGlobalName = 256;

const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::None: return "None";
    case Value::Kind::Bool: return "bool";
    case Value::Kind::Int: return "int";
    case Value::Kind::String: return "str";
    case Value::Kind::Tuple: return "tuple";
    case Value::Kind::List: return "list";
    case Value::Kind::Dict: return "dict";
    case Value::Kind::Global: return "global";
    case Value::Kind::Storage: return "storage";
    case Value::Kind::Tensor: return "tensor";
  }
  return "?";
}

bool storage_dtype(const std::string& global, DType* dtype) {
  if (global == "torch.FloatStorage") *dtype = DType::F32;
  else if (global == "torch.HalfStorage") *dtype = DType::F16;
  else if (global == "torch.BFloat16Storage") *dtype = DType::BF16;
  else return false;
  return true;
}

bool allowed_global(const std::string& name) {
  DType unused;
  return name == "collections.OrderedDict" || name == "torch._utils._rebuild_tensor_v2" ||
         name == "torch._utils._rebuild_parameter" || storage_dtype(name, &unused);
}

class Machine {
 public:
  Machine(std::string_view pickle, const std::string& source) : in_(pickle), source_(source) {}

  ValuePtr run() {
    while (true) {
      TULU_CHECK(pos_ < in_.size(), source_, ": pickle ends without STOP at byte ", pos_);
      op_pos_ = pos_;
      op_ = static_cast<uint8_t>(in_[pos_++]);
      if (op_ == '.') break;  // STOP
      step();
      TULU_CHECK(stack_.size() <= kMaxStack, where(), "stack too deep");
    }
    TULU_CHECK(stack_.size() == 1 && marks_.empty(), where(), "STOP with ", stack_.size(), " values on the stack");
    return stack_.back();
  }

 private:
  std::string where() const {
    const char c = static_cast<char>(op_);
    const bool printable = op_ >= 0x20 && op_ < 0x7f;
    return str_cat(source_, ": pickle opcode 0x", hex(op_), printable ? str_cat(" ('", c, "')") : std::string(),
                   " at byte ", op_pos_, ": ");
  }
  static std::string hex(uint8_t b) {
    const char* digits = "0123456789abcdef";
    return {digits[b >> 4], digits[b & 15]};
  }

  // --- input -------------------------------------------------------------------------
  std::string_view take(uint64_t n) {
    TULU_CHECK(n <= in_.size() - pos_, where(), "needs ", n, " bytes but the pickle ends at byte ", in_.size());
    std::string_view s = in_.substr(pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  uint64_t le(int bytes) {
    std::string_view s = take(static_cast<uint64_t>(bytes));
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[static_cast<size_t>(i)]);
    return v;
  }
  std::string line() {
    const size_t end = in_.find('\n', pos_);
    TULU_CHECK(end != std::string_view::npos && end - pos_ <= kMaxGlobalName, where(), "malformed GLOBAL name");
    std::string s(in_.substr(pos_, end - pos_));
    pos_ = end + 1;
    return s;
  }

  // --- stack -------------------------------------------------------------------------
  ValuePtr pop() {
    TULU_CHECK(!stack_.empty() && (marks_.empty() || stack_.size() > marks_.back()), where(), "stack underflow");
    ValuePtr v = std::move(stack_.back());
    stack_.pop_back();
    return v;
  }
  ValuePtr& top() {
    TULU_CHECK(!stack_.empty() && (marks_.empty() || stack_.size() > marks_.back()), where(), "stack underflow");
    return stack_.back();
  }
  std::vector<ValuePtr> pop_to_mark() {
    TULU_CHECK(!marks_.empty(), where(), "no MARK on the stack");
    const size_t mark = marks_.back();
    marks_.pop_back();
    std::vector<ValuePtr> items(std::make_move_iterator(stack_.begin() + static_cast<std::ptrdiff_t>(mark)),
                                std::make_move_iterator(stack_.end()));
    stack_.resize(mark);
    return items;
  }
  void push(ValuePtr v) { stack_.push_back(std::move(v)); }

  static ValuePtr make(Value::Kind kind) {
    auto v = std::make_shared<Value>();
    v->kind = kind;
    return v;
  }
  ValuePtr make_int(int64_t n) {
    auto v = make(Value::Kind::Int);
    v->number = n;
    return v;
  }
  // Places child inside parent: seals the child, bounds the depth.
  void adopt(Value& parent, ValuePtr child) {
    child->sealed = true;
    TULU_CHECK(child->depth < kMaxDepth, where(), "values nested deeper than ", kMaxDepth);
    parent.depth = std::max(parent.depth, child->depth + 1);
    parent.items.push_back(std::move(child));
  }
  ValuePtr make_tuple(std::vector<ValuePtr> items) {
    auto t = make(Value::Kind::Tuple);
    for (auto& item : items) adopt(*t, std::move(item));
    return t;
  }
  Value& mutable_container(Value::Kind kind) {
    Value& c = *top();
    TULU_CHECK(c.kind == kind, where(), "expected a ", kind_name(kind), " below the items, got ", kind_name(c.kind));
    TULU_CHECK(!c.sealed, where(), "modifies a ", kind_name(kind), " already placed inside another value");
    return c;
  }
  void set_items(std::vector<ValuePtr> items) {
    TULU_CHECK(items.size() % 2 == 0, where(), "odd number of items for a dict");
    Value& dict = mutable_container(Value::Kind::Dict);
    for (auto& item : items) adopt(dict, std::move(item));
  }

  // --- memo --------------------------------------------------------------------------
  void put(uint64_t index) {
    ValuePtr& v = top();
    memo_[index] = v;
  }
  void get(uint64_t index) {
    auto it = memo_.find(index);
    TULU_CHECK(it != memo_.end(), where(), "memo index ", index, " was never stored");
    push(it->second);
  }

  // --- torch records -----------------------------------------------------------------
  int64_t as_int(const ValuePtr& v, const char* what) {
    TULU_CHECK(v->kind == Value::Kind::Int, where(), what, ": expected an int, got ", kind_name(v->kind));
    return v->number;
  }
  std::vector<int64_t> int_tuple(const ValuePtr& v, const char* what) {
    TULU_CHECK(v->kind == Value::Kind::Tuple, where(), what, ": expected a tuple, got ", kind_name(v->kind));
    std::vector<int64_t> out;
    for (const auto& item : v->items) {
      const int64_t n = as_int(item, what);
      TULU_CHECK(n >= 0, where(), what, ": negative value ", n);
      out.push_back(n);
    }
    return out;
  }

  // ('storage', storage_type, key, location, numel)
  ValuePtr persistent_load(const ValuePtr& pid) {
    TULU_CHECK(pid->kind == Value::Kind::Tuple && pid->items.size() == 5, where(),
               "persistent id is not a ('storage', type, key, location, numel) tuple");
    const auto& f = pid->items;
    TULU_CHECK(f[0]->kind == Value::Kind::String && f[0]->text == "storage", where(),
               "persistent id does not start with 'storage'");
    TULU_CHECK(f[1]->kind == Value::Kind::Global, where(), "persistent id: storage type is not a class");
    auto storage = make(Value::Kind::Storage);
    TULU_CHECK(storage_dtype(f[1]->text, &storage->tensor.dtype), where(), "storage type ", f[1]->text,
               " is not supported (supported: FloatStorage, HalfStorage, BFloat16Storage)");
    TULU_CHECK(f[2]->kind == Value::Kind::String, where(), "persistent id: storage key is not a string");
    storage->tensor.storage_key = f[2]->text;
    storage->tensor.storage_numel = as_int(f[4], "storage numel");
    TULU_CHECK(storage->tensor.storage_numel >= 0, where(), "negative storage size");
    return storage;
  }

  ValuePtr reduce(const ValuePtr& callable, const ValuePtr& args) {
    TULU_CHECK(callable->kind == Value::Kind::Global, where(), "REDUCE on a ", kind_name(callable->kind));
    TULU_CHECK(args->kind == Value::Kind::Tuple, where(), "REDUCE arguments are not a tuple");
    const std::string& name = callable->text;
    const auto& a = args->items;
    if (name == "collections.OrderedDict") {
      TULU_CHECK(a.empty(), where(), "OrderedDict called with arguments");
      return make(Value::Kind::Dict);
    }
    if (name == "torch._utils._rebuild_tensor_v2") {
      // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
      TULU_CHECK(a.size() == 6 || a.size() == 7, where(), "_rebuild_tensor_v2 with ", a.size(), " arguments");
      TULU_CHECK(a[0]->kind == Value::Kind::Storage, where(), "_rebuild_tensor_v2: first argument is not a storage");
      auto tensor = make(Value::Kind::Tensor);
      tensor->tensor = a[0]->tensor;
      tensor->tensor.storage_offset = as_int(a[1], "storage offset");
      TULU_CHECK(tensor->tensor.storage_offset >= 0, where(), "negative storage offset");
      tensor->tensor.shape = int_tuple(a[2], "tensor size");
      tensor->tensor.stride = int_tuple(a[3], "tensor stride");
      TULU_CHECK(tensor->tensor.shape.size() == tensor->tensor.stride.size(), where(), "size has rank ",
                 tensor->tensor.shape.size(), " but stride has rank ", tensor->tensor.stride.size());
      TULU_CHECK(a[5]->kind == Value::Kind::Dict && a[5]->items.empty(), where(),
                 "tensor with backward hooks is not supported");
      return tensor;
    }
    if (name == "torch._utils._rebuild_parameter") {
      // (data, requires_grad, backward_hooks)
      TULU_CHECK(a.size() == 3 && a[0]->kind == Value::Kind::Tensor, where(), "malformed _rebuild_parameter");
      TULU_CHECK(a[2]->kind == Value::Kind::Dict && a[2]->items.empty(), where(),
                 "parameter with backward hooks is not supported");
      return a[0];
    }
    fail(where(), "calling ", name, " is not supported");
  }

  void step() {
    switch (op_) {
      case 0x80: {  // PROTO
        const uint64_t v = le(1);
        TULU_CHECK(v >= 2 && v <= 5, where(), "pickle protocol ", v, " is not supported");
        break;
      }
      case 0x95: le(8); break;  // FRAME: a size hint
      case '(': marks_.push_back(stack_.size()); break;  // MARK
      case '}': push(make(Value::Kind::Dict)); break;    // EMPTY_DICT
      case ']': push(make(Value::Kind::List)); break;    // EMPTY_LIST
      case ')': push(make(Value::Kind::Tuple)); break;   // EMPTY_TUPLE
      case 't': push(make_tuple(pop_to_mark())); break;  // TUPLE
      case 0x85: case 0x86: case 0x87: {                 // TUPLE1..3
        std::vector<ValuePtr> items(static_cast<size_t>(op_ - 0x84));
        for (size_t i = items.size(); i-- > 0;) items[i] = pop();
        push(make_tuple(std::move(items)));
        break;
      }
      case 'N': push(make(Value::Kind::None)); break;
      case 0x88: case 0x89: {  // NEWTRUE, NEWFALSE
        auto b = make(Value::Kind::Bool);
        b->number = op_ == 0x88;
        push(b);
        break;
      }
      case 'J': push(make_int(static_cast<int32_t>(static_cast<uint32_t>(le(4))))); break;  // BININT
      case 'K': push(make_int(static_cast<int64_t>(le(1)))); break;                         // BININT1
      case 'M': push(make_int(static_cast<int64_t>(le(2)))); break;                         // BININT2
      case 0x8a: {  // LONG1: n bytes, little-endian two's complement
        const uint64_t n = le(1);
        TULU_CHECK(n <= 8, where(), "integer of ", n, " bytes is too large");
        uint64_t v = n == 0 ? 0 : le(static_cast<int>(n));
        if (n > 0 && n < 8 && (v >> (8 * n - 1)) & 1) v |= ~uint64_t{0} << (8 * n);  // sign-extend
        push(make_int(static_cast<int64_t>(v)));
        break;
      }
      case 'X': case 0x8c: case 0x8d: {  // BINUNICODE, SHORT_BINUNICODE, BINUNICODE8
        const uint64_t n = le(op_ == 'X' ? 4 : op_ == 0x8c ? 1 : 8);
        auto s = make(Value::Kind::String);
        s->text = std::string(take(n));
        push(s);
        break;
      }
      case 'c': {  // GLOBAL "module\nname\n"
        const std::string module = line();
        const std::string name = line();
        push_global(module + "." + name);
        break;
      }
      case 0x93: {  // STACK_GLOBAL
        ValuePtr name = pop();
        ValuePtr module = pop();
        TULU_CHECK(name->kind == Value::Kind::String && module->kind == Value::Kind::String, where(),
                   "STACK_GLOBAL needs two strings");
        push_global(module->text + "." + name->text);
        break;
      }
      case 'q': put(le(1)); break;      // BINPUT
      case 'r': put(le(4)); break;      // LONG_BINPUT
      case 0x94: put(memo_.size()); break;  // MEMOIZE
      case 'h': get(le(1)); break;      // BINGET
      case 'j': get(le(4)); break;      // LONG_BINGET
      case 'Q': push(persistent_load(pop())); break;  // BINPERSID
      case 'R': {  // REDUCE
        ValuePtr args = pop();
        ValuePtr callable = pop();
        push(reduce(callable, args));
        break;
      }
      case 's': {  // SETITEM
        ValuePtr value = pop();
        ValuePtr key = pop();
        set_items({std::move(key), std::move(value)});
        break;
      }
      case 'u': set_items(pop_to_mark()); break;  // SETITEMS
      case 'a': {                                 // APPEND
        ValuePtr value = pop();
        adopt(mutable_container(Value::Kind::List), std::move(value));
        break;
      }
      case 'e': {  // APPENDS
        std::vector<ValuePtr> items = pop_to_mark();
        Value& list = mutable_container(Value::Kind::List);
        for (auto& item : items) adopt(list, std::move(item));
        break;
      }
      case 'b': {  // BUILD: object state; accepted (and ignored) only for dicts, as the
                   // `_metadata` attribute of a module's state_dict()
        ValuePtr state = pop();
        TULU_CHECK(top()->kind == Value::Kind::Dict, where(), "BUILD on a ", kind_name(top()->kind));
        TULU_CHECK(state->kind == Value::Kind::Dict || state->kind == Value::Kind::None ||
                       state->kind == Value::Kind::Tuple,
                   where(), "BUILD with a ", kind_name(state->kind), " state");
        break;
      }
      default:
        fail(where(), "is not allowed in a state dict pickle (refused, not executed)");
    }
  }

  void push_global(const std::string& name) {
    TULU_CHECK(allowed_global(name), where(), "global '", name,
               "' is not allowed in a state dict (refused, not executed)");
    auto g = make(Value::Kind::Global);
    g->text = name;
    push(g);
  }

  std::string_view in_;
  const std::string& source_;
  size_t pos_ = 0, op_pos_ = 0;
  uint8_t op_ = 0;
  std::vector<ValuePtr> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, ValuePtr> memo_;
};

}  // namespace

std::vector<std::pair<std::string, PickledTensor>> unpickle_state_dict(std::string_view pickle,
                                                                        const std::string& source) {
  Machine machine(pickle, source);
  ValuePtr root = machine.run();
  TULU_CHECK(root->kind == Value::Kind::Dict, source, ": the pickled object is a ", kind_name(root->kind),
             ", expected a state dict (a dict of name → tensor)");
  std::vector<std::pair<std::string, PickledTensor>> out;
  for (size_t i = 0; i + 1 < root->items.size(); i += 2) {
    const Value& key = *root->items[i];
    const Value& value = *root->items[i + 1];
    TULU_CHECK(key.kind == Value::Kind::String, source, ": state dict key is a ", kind_name(key.kind),
               ", expected a string");
    TULU_CHECK(value.kind == Value::Kind::Tensor, source, ": state dict entry '", key.text, "' is a ",
               kind_name(value.kind), ", expected a tensor");
    out.emplace_back(key.text, value.tensor);
  }
  return out;
}

}  // namespace tulu
