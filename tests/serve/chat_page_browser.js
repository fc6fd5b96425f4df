// Drives the chat page of `tulu serve` in headless Chromium (Debian's /usr/bin/chromium)
// with playwright-core, for test_serve_chat_page.py: node chat_page_browser.js URL
// Sets a system prompt and max tokens, sends two turns, waits for each streamed reply to
// finish and prints {"replies": [...], "bubbles": N, "title": ...} as JSON.
const { chromium } = require('playwright-core');

async function main() {
  const [url] = process.argv.slice(2);
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--headless=new'],
  });
  try {
    const page = await browser.newPage();
    page.setDefaultTimeout(60000);
    await page.goto(url);
    const title = await page.title();
    await page.fill('#system', 'You are a test.');
    await page.fill('#max_tokens', '12');
    const replies = [];
    for (const [i, text] of ['Hello there', 'And then?'].entries()) {
      await page.fill('#input', text);
      await page.press('#input', 'Enter');
      const bubble = page.locator('.assistant').nth(i);
      await page.waitForFunction((n) => {
        const b = document.querySelectorAll('.assistant')[n];
        return b && b.dataset.done === 'true';
      }, i);
      replies.push(await bubble.textContent());
    }
    const bubbles = await page.locator('.message').count();
    const errors = await page.locator('.error').count();
    console.log(JSON.stringify({ title, replies, bubbles, errors }));
  } finally {
    await browser.close();
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
