// Drives `tulu serve` with the official `openai` npm client (tests/reference/node_modules),
// as test_serve_openai_client.py asks: node openai_client.js BASE_URL API_KEY PROMPT
// Prints one JSON object with what the client saw.
const OpenAI = require('openai');

async function main() {
  const [baseURL, apiKey, prompt] = process.argv.slice(2);
  const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60000 });
  const out = {};
  const models = await client.models.list();
  out.models = models.data.map((m) => m.id);

  const messages = [{ role: 'user', content: prompt }];
  const chat = await client.chat.completions.create({
    model: out.models[0], messages, max_tokens: 16, temperature: 0,
  });
  out.chat = { text: chat.choices[0].message.content, finish: chat.choices[0].finish_reason,
               usage: chat.usage, object: chat.object };

  const stream = await client.chat.completions.create({
    model: out.models[0], messages, max_tokens: 16, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let finish = null;
  let usage = null;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks += 1;
    if (chunk.usage) usage = chunk.usage;
    for (const choice of chunk.choices) {
      text += choice.delta.content || '';
      if (choice.finish_reason) finish = choice.finish_reason;
    }
  }
  out.chat_stream = { text, finish, usage, chunks };

  const completion = await client.completions.create({
    model: out.models[0], prompt, max_tokens: 8, temperature: 0,
  });
  out.completion = { text: completion.choices[0].text, finish: completion.choices[0].finish_reason };

  const cstream = await client.completions.create({
    model: out.models[0], prompt, max_tokens: 8, temperature: 0, stream: true,
  });
  let ctext = '';
  for await (const chunk of cstream) ctext += chunk.choices.map((c) => c.text).join('');
  out.completion_stream = { text: ctext };

  try {
    await client.chat.completions.create({ model: out.models[0], messages: [], max_tokens: 4 });
    out.bad_request = { status: 0 };
  } catch (e) {
    out.bad_request = { status: e.status, param: e.param, type: e.type, message: e.message };
  }
  const unauthorized = new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 });
  try {
    await unauthorized.models.list();
    out.unauthorized = { status: 0 };
  } catch (e) {
    out.unauthorized = { status: e.status, name: e.constructor.name };
  }
  console.log(JSON.stringify(out));
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
