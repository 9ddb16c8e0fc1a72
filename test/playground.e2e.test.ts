import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { chromium, type Browser, type Page } from "playwright-core";
import { startServer, type RunningServer } from "../src/server/index.ts";

/**
 * The playground end to end: headless Chromium (Debian's, driven by playwright-core) opens the page,
 * runs examples and edited code, and reads what the page shows. Also takes docs/playground.png.
 */
const CHROMIUM = "/usr/bin/chromium";
const SCREENSHOT = fileURLToPath(new URL("../docs/playground.png", import.meta.url));
const skip = existsSync(CHROMIUM) ? false : `no ${CHROMIUM}: install Debian's chromium (apt-get install chromium) to run the playground test`;

let server: RunningServer;
let browser: Browser;
let page: Page;
before(async () => {
  if (skip) return;
  server = await startServer({ port: 0, loader: { executors: 1 } });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
  page = await browser.newPage({ viewport: { width: 1360, height: 820 } });
  await page.goto(server.url);
  await page.locator(".cm-editor .cm-content").waitFor();
});
after(async () => {
  await browser?.close();
  await server?.close();
});

/** Starts a run (by the button, or by a key in the editor) and waits until the page shows its result. */
async function runAndWait(start = () => page.locator("#run").click()): Promise<void> {
  const runs = Number(await page.locator("#result").getAttribute("data-runs") ?? 0);
  await start();
  await page.waitForFunction((n) => Number(document.getElementById("result")!.dataset.runs ?? 0) > n, runs);
}

const text = (selector: string) => page.locator(selector).innerText();

describe("playground in headless Chromium", { skip }, () => {
  test("the JSON API example runs: response, logs, outcome and cost are shown", async () => {
    await page.selectOption("#example", "json-api");
    await runAndWait();
    assert.equal(await text("#status"), "201", `the page shows: ${await text("#error")} ${await text("#logs")}`);
    assert.equal(await text("#outcome"), "ok");
    const body = JSON.parse(await text("#response-body"));
    assert.equal(body.title, "write a worker");
    assert.match(body.id, /^[0-9a-f-]{36}$/);
    assert.match(await text("#logs"), /\[log\] created [0-9a-f-]{36}/);
    assert.match(await text("#cpu"), /^\d+\.\d+ ms$/);
    assert.match(await text("#memory"), /^\d+\.\d+ MB$/);
    assert.match(await text("#response-headers"), /content-type: application\/json/);
    mkdirSync(fileURLToPath(new URL("../docs/", import.meta.url)), { recursive: true });
    await page.screenshot({ path: SCREENSHOT });
  });

  test("the infinite loop example ends at the CPU limit", async () => {
    await page.selectOption("#example", "infinite-loop");
    assert.equal(await page.inputValue("#cpu-ms"), "50");
    await runAndWait();
    assert.equal(await text("#outcome"), "exceededCpu");
    assert.match(await text("#error"), /CpuTimeLimitError: Worker exceeded CPU time limit of 50 ms/);
    assert.match(await text("#logs"), /starting to spin/);
  });

  test("code typed into the editor runs, with the request fields", async () => {
    await page.locator(".cm-content").click();
    await page.keyboard.press("ControlOrMeta+A");
    await page.keyboard.press("Delete");
    await page.keyboard.insertText("export default { async fetch(r) { console.warn('typed'); return new Response(r.method + ' ' + (await r.text())) } }");
    await page.selectOption("#method", "POST");
    await page.fill("#body", "from the page");
    await runAndWait(async () => {
      await page.locator(".cm-content").click();
      await page.keyboard.press("ControlOrMeta+Enter");
    });
    assert.equal(await text("#response-body"), "POST from the page");
    assert.match(await text("#logs"), /\[warn\] typed/);
  });

  test("Share puts the code and fields in the address; opening it restores them", async () => {
    await page.locator("#share").click();
    const link = page.url();
    assert.match(link, /#s=[\w-]+$/);
    const other = await browser.newPage();
    try {
      await other.goto(link);
      await other.locator(".cm-editor .cm-content").waitFor();
      assert.match(await other.locator(".cm-content").innerText(), /console\.warn\('typed'\)/);
      assert.equal(await other.inputValue("#method"), "POST");
      assert.equal(await other.inputValue("#body"), "from the page");
    } finally {
      await other.close();
    }
  });
});
