// Browser tests of the workbench: Debian's chromium driven by
// playwright-core, against the real `serve` that cmd/dingdesk's
// TestWebBrowser starts (with the fake DingTalk and a control API that
// plays the users). Run through `go test ./cmd/dingdesk -run TestWebBrowser`
// with DINGDESK_BROWSER_TESTS=1 (.ci/run does).
import assert from "node:assert/strict";
import { BASE, T, control, expectText, newPage, run, say, sent, step } from "./harness.mjs";

const REPLICA_B = process.env.REPLICA_B === "1";
const SCREENSHOT = process.env.SCREENSHOT || "";

await run("browser tests", async () => {
  const { page: a1 } = await newPage(); // agent1, logged in by link
  const { page: a2 } = await newPage(); // agent2, logged in by DingTalk OAuth
  let link;

  await step("no cookie: the workbench asks for a login", async () => {
    const { page, ctx } = await newPage();
    const resp = await page.goto(BASE + "/desk");
    assert.equal(resp.status(), 401);
    await expectText(page.locator("body"), "请先登录");
    await ctx.close();
  });

  await step("login by one-time link", async () => {
    link = (await control("/login-link", { staff: "agent1" })).url;
    await a1.goto(link);
    await a1.waitForURL(BASE + "/desk", { timeout: T });
    await expectText(a1.locator("header .me"), "小王");
  });

  await step("a reused and an expired link are refused", async () => {
    const { page, ctx } = await newPage();
    let resp = await page.goto(link);
    assert.equal(resp.status(), 410);
    await expectText(page.locator("h1"), "登录链接已使用");
    const expired = (await control("/expired-link", { staff: "agent1" })).url;
    resp = await page.goto(expired);
    assert.equal(resp.status(), 410);
    await expectText(page.locator("h1"), "登录链接已过期");
    await ctx.close();
  });

  await step("login by DingTalk OAuth against the fake", async () => {
    await control("/oauth-user", { userid: "agent2" });
    await a2.goto(BASE + "/login");
    await a2.click("#dingtalk-login");
    await a2.waitForURL(BASE + "/desk", { timeout: T });
    await expectText(a2.locator("header .me"), "小李");
  });

  await step("上线", async () => {
    for (const p of [a1, a2]) {
      await p.locator("#status button", { hasText: "上线" }).click();
      await expectText(p.locator("#status .now"), "在线");
    }
  });

  await step("a user's 转人工 appears live in 会话列表", async () => {
    await say("u1", "转人工");
    await expectText(a1.locator("#list .sessions li.session"), "用户u1");
    await a1.locator("#list .sessions li.session a", { hasText: "用户u1" }).click();
    await a1.waitForURL(/\/desk\/s\/\d+$/);
    await expectText(a1.locator("#info"), "用户要求转人工");
  });

  await step("the user's message arrives live, with 推荐知识 for it", async () => {
    await say("u1", "VPN 连不上怎么办");
    await expectText(a1.locator("#transcript .line.user"), "VPN 连不上怎么办");
    await expectText(a1.locator("#suggest"), "针对：“VPN 连不上怎么办”");
    await expectText(a1.locator("#suggest button.use"), "VPN答案");
  });

  await step("reply by Enter reaches the user; Shift+Enter makes a new line", async () => {
    const box = a1.locator("#reply-text");
    let mark = (await control("/mark")).mark;
    await box.fill("您好，我来帮您看看");
    await box.press("Enter");
    await sent(mark, "u1", "您好，我来帮您看看");
    assert.equal(await box.inputValue(), "");
    mark = (await control("/mark")).mark;
    await box.type("第一行");
    await box.press("Shift+Enter");
    await box.type("第二行");
    assert.equal(await box.inputValue(), "第一行\n第二行");
    await box.press("Enter");
    await sent(mark, "u1", "第一行\n第二行");
    await expectText(a1.locator("#transcript .line.agent"), "第二行");
  });

  await step("推荐知识: click puts the answer into the input box and it sends", async () => {
    const mark = (await control("/mark")).mark;
    await a1.locator("#suggest button.use", { hasText: "VPN答案" }).first().click();
    assert.match(await a1.locator("#reply-text").inputValue(), /VPN答案/);
    await a1.locator("#reply-text").press("Enter");
    await sent(mark, "u1", "VPN答案");
  });

  await step("search as you type → click → send", async () => {
    const mark = (await control("/mark")).mark;
    await a1.locator("#kb-q").type("打印机");
    await expectText(a1.locator("#kb-results button.use"), "打印机怎么添加");
    await a1.locator("#kb-results button.use", { hasText: "打印机怎么添加" }).click();
    assert.match(await a1.locator("#reply-text").inputValue(), /打印机答案/);
    await a1.locator("#reply-text").press("Enter");
    await sent(mark, "u1", "打印机答案");
  });

  await step("the draft is kept per session", async () => {
    await a1.locator("#reply-text").fill("还没发出去的草稿");
    await a1.reload();
    assert.equal(await a1.locator("#reply-text").inputValue(), "还没发出去的草稿");
    await a1.locator("#reply-text").fill("");
  });

  await step("a personal 常用语 made in settings, then sent", async () => {
    const sessionURL = a1.url();
    await a1.click("header nav a[href='/desk/settings']");
    await a1.fill("form.add-canned input[name=category]", "跟进");
    await a1.fill("form.add-canned textarea[name=text]", "请稍等，我帮您查一下");
    await a1.click("form.add-canned button[type=submit]");
    await expectText(a1.locator(".canned-row"), "");
    assert.equal(await a1.locator(".canned-row input[name=text]").first().inputValue(), "请稍等，我帮您查一下");
    await a1.goto(sessionURL);
    const mark = (await control("/mark")).mark;
    await a1.locator("#canned button.use", { hasText: "请稍等，我帮您查一下" }).click();
    await a1.locator("#reply-text").press("Enter");
    await sent(mark, "u1", "请稍等，我帮您查一下");
  });

  if (SCREENSHOT) {
    await step("screenshot for the README", async () => {
      await say("u1", "好的，谢谢");
      await expectText(a1.locator("#transcript .line.user"), "好的，谢谢");
      await a1.locator("#kb-q").fill("");
      await a1.waitForTimeout(600); // the read mark clears the badge
      await a1.evaluate(() => { document.activeElement.blur(); document.querySelector(".pane.side").scrollTop = 0; });
      await a1.screenshot({ path: SCREENSHOT });
    });
  }

  await step("refused: another agent's session, a forged CSRF token", async () => {
    const sessionURL = a1.url();
    const resp = await a2.goto(sessionURL);
    assert.equal(resp.status(), 403);
    await expectText(a2.locator("body"), "不属于您");
    const status = await a1.evaluate(async () => {
      const f = new FormData(); f.append("presence", "busy");
      const r = await fetch("/desk/presence", { method: "POST", body: f, headers: { "X-CSRF-Token": "forged" } });
      return { code: r.status, text: await r.text() };
    });
    assert.equal(status.code, 403);
    assert.match(status.text, /CSRF/);
    await a1.reload();
    await expectText(a1.locator("#status .now"), "在线"); // nothing changed
    await a2.goto(BASE + "/desk");
  });

  await step("转接 to a skill group with a note; the other agent sees it live", async () => {
    const mark = (await control("/mark")).mark;
    await a1.locator(".chat-actions button", { hasText: "转接" }).click();
    await expectText(a1.locator(".modal"), "人事");
    await expectText(a1.locator(".modal label", { hasText: "人事" }), "1 人在线");
    await a1.locator(".modal input[value='group:hr']").check();
    await a1.fill(".modal textarea[name=note]", "用户想问年假");
    await a1.locator(".modal button", { hasText: "确定转接" }).click();
    await a1.waitForURL(BASE + "/desk", { timeout: T });
    await sent(mark, "u1", "小李");
    await expectText(a2.locator("#list .sessions li.session"), "用户u1");
    await a2.locator("#list .sessions li.session a", { hasText: "用户u1" }).click();
    await expectText(a2.locator("#info .note"), "用户想问年假");
    await expectText(a2.locator("#info"), "小王"); // 转自
    await expectText(a2.locator("#transcript"), "VPN 连不上怎么办"); // the whole transcript
  });

  await step("结束会话 sends the closing text; the session is in 已结束, read-only", async () => {
    const mark = (await control("/mark")).mark;
    await a2.locator(".chat-actions button", { hasText: "结束会话" }).click();
    await a2.waitForURL(BASE + "/desk", { timeout: T });
    await sent(mark, "u1", "本次人工服务已结束");
    await a2.click("header nav a[href='/desk/ended']");
    await expectText(a2.locator("table.ended"), "用户u1");
    await a2.fill("input[name=q]", "u1");
    await a2.click(".filters button[type=submit]");
    await a2.locator("table.ended a", { hasText: "用户u1" }).click();
    await expectText(a2.locator(".readonly"), "会话已结束（只读）");
    assert.equal(await a2.locator("#reply-text").count(), 0);
  });

  await step("alerts: unread count in the title, a sound, for a new session", async () => {
    await a1.goto(BASE + "/desk");
    await a1.evaluate(() => { localStorage.setItem("dd.focused", "1"); window.ddAlerts = 0; });
    await say("u2", "转人工");
    await expectText(a1.locator("#list .sessions li.session"), "用户u2");
    await a1.waitForFunction(() => window.ddAlerts > 0, null, { timeout: T });
    await say("u2", "在吗");
    await a1.waitForFunction(() => /^\(\d+\) /.test(document.title), null, { timeout: T });
  });

  await step("转接 to a named agent (with load) and a note: the DingTalk notice and 会员信息 carry it", async () => {
    await a1.locator("#list .sessions li.session a", { hasText: "用户u2" }).click();
    await a1.locator(".chat-actions button", { hasText: "转接" }).click();
    const opt = a1.locator(".modal label", { hasText: "小李" });
    await expectText(opt, "在线 · 接待 0/5");
    const mark = (await control("/mark")).mark;
    await a1.locator(".modal input[value='agent:agent2']").check();
    await a1.fill(".modal textarea[name=note]", "老客户，请优先处理");
    await a1.locator(".modal button", { hasText: "确定转接" }).click();
    await a1.waitForURL(BASE + "/desk", { timeout: T });
    await sent(mark, "agent2", "转接附言（小王）：老客户，请优先处理"); // 【转接会话】 in DingTalk
    await sent(mark, "u2", "小李");
    await expectText(a2.locator("#list .sessions li.session"), "用户u2");
    await a2.locator("#list .sessions li.session a", { hasText: "用户u2" }).click();
    await expectText(a2.locator("#info .note"), "老客户，请优先处理");
  });

  await step("the DingTalk desk's 忙碌 / 上线 shows in the browser live", async () => {
    const t0 = Date.now();
    await say("agent1", "忙碌");
    await expectText(a1.locator("#status .now"), "忙碌");
    console.log(`     DingTalk desk → browser: ${Date.now() - t0} ms`);
    await say("agent1", "上线");
    await expectText(a1.locator("#status .now"), "在线");
  });

  await step("resume after the server restarts", async () => {
    await control("/restart");
    await say("u3", "转人工");
    await expectText(a1.locator("#list .sessions li.session"), "用户u3");
  });

  if (REPLICA_B) {
    await step("a browser on replica A sees a message handled by replica B, live", async () => {
      const t0 = Date.now();
      await say("u4", "转人工", "b");
      await expectText(a1.locator("#list .sessions li.session"), "用户u4");
      console.log(`     replica B → browser on A: ${Date.now() - t0} ms`);
    });
  }
});
