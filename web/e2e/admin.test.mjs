// Browser tests of the admin console (管理后台): Debian's chromium driven by
// playwright-core against the real `serve` that cmd/dingdesk's
// TestAdminBrowser starts, with a control API that plays users and agents
// through the webhook. Run with DINGDESK_BROWSER_TESTS=1.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { BASE, T, control, newPage as openPage, run, say, sent, step } from "./harness.mjs";

const SHOTS = process.env.ADMIN_SHOTS || ""; // a directory for screenshots of the pages, when set
// ask sends text and returns the first reply to the user.
async function ask(user, text) {
  const { mark } = await say(user, text);
  return (await sent(mark, user, "")).text;
}

// askUntil asks until the reply matches re (a knowledge change is live on
// every replica within seconds, not at once). Each try is another user, so
// the misses before the change never add up to a hand-off.
async function askUntil(user, text, re) {
  let got = "";
  for (let i = 0; i < 40 && !re.test(got); i++) {
    if (i) await new Promise((r) => setTimeout(r, 250));
    got = await ask(`${user}x${i}`, text);
  }
  assert.match(got, re);
}

const newPage = () => openPage({ viewport: { width: 1366, height: 900 }, acceptDownloads: true });

async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: `${SHOTS}/${name}.png`, fullPage: true });
}

async function login(page, staff) {
  const { url } = await control("/login-link", { staff });
  await page.goto(url);
}

// cell waits until the monitor cell sel reads text, without a reload.
async function cell(page, sel, text) {
  await page.waitForFunction(([s, t]) => document.querySelector(s)?.textContent.trim() === t, [sel, text], { timeout: T });
}

await run("admin browser tests", async () => {
  const { page: admin } = await newPage();

  await step("an admin logs in and lands on 实时监控", async () => {
    await login(admin, "boss");
    await admin.waitForURL(BASE + "/admin/monitor", { timeout: T });
    await admin.locator("h1", { hasText: "实时监控" }).waitFor({ timeout: T });
  });

  await step("an agent who is not an admin is refused the console", async () => {
    const { page, ctx } = await newPage();
    await login(page, "agent1");
    await page.waitForURL(BASE + "/desk", { timeout: T });
    for (const p of ["/admin/monitor", "/admin/unanswered", "/admin/kb", "/admin/reports", "/admin/reports/report.csv", "/admin/transcripts"]) {
      const resp = await page.goto(BASE + p);
      assert.equal(resp.status(), 403, p);
      await page.locator("body", { hasText: "没有打开此页面的权限" }).waitFor({ timeout: T });
    }
    assert.equal(await page.locator("nav.admin-nav").count(), 0, "no console links for an agent");
    await ctx.close();
  });

  await step("monitor counts change live when agents go online and a user queues", async () => {
    await admin.evaluate(() => { window.ddNoReload = true; });
    const it = 'tr[data-group="it"]';
    await cell(admin, `#monitor-groups ${it} td[data-k="online"]`, "0");
    await ask("agent1", "上线");
    await cell(admin, `#monitor-groups ${it} td[data-k="online"]`, "1");
    await ask("u1", "转人工");
    await cell(admin, `#monitor-groups ${it} td[data-k="active"]`, "1");
    await ask("u2", "转人工"); // agent1 is full: u2 queues
    await cell(admin, `#monitor-groups ${it} td[data-k="queued"]`, "1");
    await ask("agent3", "上线"); // takes u2 from the queue
    await cell(admin, `#monitor-groups ${it} td[data-k="online"]`, "2");
    await cell(admin, `#monitor-groups ${it} td[data-k="queued"]`, "0");
    await cell(admin, `#monitor-groups ${it} td[data-k="active"]`, "2");
    await cell(admin, '#monitor-agents tr[data-agent="agent3"] td[data-k="load"]', "1 / 1");
    assert.equal(await admin.evaluate(() => window.ddNoReload), true, "the page was not reloaded");
    await shot(admin, "monitor");
  });

  await step("an unanswered question becomes a similar question in one click, and the bot answers it", async () => {
    const q = "公司网络远程接入怎么弄";
    assert.match(await ask("u5", q), /抱歉/);
    await admin.goto(BASE + "/admin/unanswered");
    const row = admin.locator(`#unanswered tr[data-question="${q}"]`);
    await row.waitFor({ timeout: T });
    await shot(admin, "unanswered");
    await row.getByRole("button", { name: "添加到：VPN 连不上怎么办" }).click();
    await admin.locator(".notice", { hasText: "已将" }).waitFor({ timeout: T });
    assert.equal(await admin.locator(`#unanswered tr[data-question="${q}"]`).count(), 0, "the question left the list");
    await askUntil("u6", q, /VPN答案/);
  });

  await step("an edited entry is what the bot answers", async () => {
    await admin.goto(BASE + "/admin/kb?q=" + encodeURIComponent("打印机"));
    await admin.locator('#kb-entries tr[data-id="printer"] a', { hasText: "编辑" }).click();
    await admin.locator('textarea[name="answer"]').fill("打印机新答案：请联系前台添加。");
    await admin.getByRole("button", { name: "保存" }).click();
    await admin.locator(".notice", { hasText: "已保存" }).waitFor({ timeout: T });
    await askUntil("u7", "打印机怎么添加", /打印机新答案/);
  });

  await step("an .xlsx import reports its bad row by number and applies only after confirming", async () => {
    const { path } = await control("/xlsx", { name: "import.xlsx", rows: [
      ["问题", "相似问题", "答案", "类目"],
      ["报销需要什么材料", "报销材料有哪些\n报销要准备什么", "报销答案：发票和审批单。", "财务"],
      ["发票抬头写什么", "", "", "财务"],
      ["差旅标准是多少", "出差住宿标准", "差旅答案：按职级执行。", "财务"],
    ] });
    await admin.goto(BASE + "/admin/kb/import");
    await admin.locator('#import-form input[type="file"]').setInputFiles(path);
    await admin.getByRole("button", { name: "上传并预览" }).click();
    await admin.locator("#import-summary", { hasText: "新增 2 条" }).waitFor({ timeout: T });
    const bad = admin.locator('#import-errors tr[data-row="3"]');
    await bad.waitFor({ timeout: T });
    await shot(admin, "import");
    assert.match(await bad.textContent(), /第 3 行/);
    assert.equal(await admin.locator("#import-errors tr[data-row]").count(), 1);
    assert.doesNotMatch(await ask("u8", "报销要准备什么"), /报销答案/, "nothing applied before confirming");
    await admin.locator("#import-confirm").click();
    await admin.locator(".notice", { hasText: "已导入 2 条" }).waitFor({ timeout: T });
    await askUntil("u8", "报销要准备什么", /报销答案/);
    await askUntil("u8", "出差住宿标准", /差旅答案/);
  });

  await step("a rated session, then the report page with its chart", async () => {
    const { mark } = await say("u1", "结束会话");
    await sent(mark, "u1", "请您对本次人工服务做出评价");
    const r = await say("u1", "5");
    await sent(r.mark, "u1", "感谢您的评价");
    await admin.goto(BASE + "/admin/reports");
    await admin.locator("#chart-sessions svg").waitFor({ timeout: T });
    await admin.locator("#chart-rates svg").waitFor({ timeout: T });
    assert.ok(await admin.locator("#report-table tr").count() >= 3, "rows and a total");
    await shot(admin, "reports");
  });

  await step("CSV downloads: day × group × agent, and per session", async () => {
    let [dl] = await Promise.all([admin.waitForEvent("download", { timeout: T }), admin.locator("#csv-report").click()]);
    let text = await readFile(await dl.path(), "utf8");
    assert.match(dl.suggestedFilename(), /^report-.*\.csv$/);
    assert.match(text, /日期,技能组,客服ID,客服,会话量/);
    assert.match(text, /IT 服务台,agent1,小王/);
    [dl] = await Promise.all([admin.waitForEvent("download", { timeout: T }), admin.locator("#csv-sessions").click()]);
    text = await readFile(await dl.path(), "utf8");
    assert.match(text, /会话ID,创建时间/);
    assert.match(text, /,是,5\r?\n/, "u1's rating");
  });

  await step("transcript search and open", async () => {
    await admin.goto(BASE + "/admin/transcripts?user=u1");
    await admin.locator("#transcripts a").first().click();
    await admin.locator("#transcript li", { hasText: "感谢您的评价" }).waitFor({ timeout: T });
    await shot(admin, "transcript");
    await admin.goto(BASE + "/admin/kb");
    await shot(admin, "kb");
  });
});
