#include <cstdio>
int main() { std::puts("tulu: under construction"); return 1; }
