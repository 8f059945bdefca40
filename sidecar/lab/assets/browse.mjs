// A browser the lab drives with puppeteer-core: Chromium over CDP or Firefox ESR over
// WebDriver BiDi, through the per-client CONNECT proxy that binds the client's address.
//   person:  one session (cookies, keep-alive, h2) that opens the shop and clicks links,
//            thinking between pages, as people do;
//   crawler: a headless browser with an ordinary user agent that fetches a list of URLs
//            directly, images off, no pause.
// Usage: node browse.mjs '<json>' with {browser, executable, proxyPort, origin, mode,
//        clicks, thinkMs: [min, max], urls, userAgent, lang}.
import puppeteer from 'puppeteer-core';

const o = JSON.parse(process.argv[2]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const think = () => sleep(o.thinkMs[0] + Math.random() * (o.thinkMs[1] - o.thinkMs[0]));
const crawler = o.mode === 'crawler';

let browser;
if (o.browser === 'firefox') {
  browser = await puppeteer.launch({
    browser: 'firefox',
    executablePath: o.executable,
    headless: true,
    acceptInsecureCerts: true,
    extraPrefsFirefox: {
      'network.proxy.type': 1,
      'network.proxy.http': '127.0.0.1',
      'network.proxy.http_port': o.proxyPort,
      'network.proxy.ssl': '127.0.0.1',
      'network.proxy.ssl_port': o.proxyPort,
      'network.proxy.no_proxies_on': '',
      'network.proxy.allow_hijacking_localhost': true,
      'intl.accept_languages': o.lang,
      'permissions.default.image': crawler ? 2 : 1,
    },
  });
} else {
  const args = [
    `--proxy-server=http://127.0.0.1:${o.proxyPort}`,
    '--ignore-certificate-errors',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
    '--no-default-browser-check',
    `--lang=${o.lang}`,
    `--accept-lang=${o.lang}`,
  ];
  if (o.userAgent) args.push(`--user-agent=${o.userAgent}`);
  if (crawler) args.push('--blink-settings=imagesEnabled=false');
  browser = await puppeteer.launch({
    browser: 'chrome',
    executablePath: o.executable,
    headless: true,
    acceptInsecureCerts: true,
    args,
  });
}

try {
  const page = await browser.newPage();
  page.setDefaultNavigationTimeout(20000);
  if (crawler) {
    for (const u of o.urls) {
      await page.goto(o.origin + u, { waitUntil: 'load' });
    }
  } else {
    await page.goto(o.origin + '/', { waitUntil: 'load' });
    for (let i = 0; i < o.clicks; i++) {
      await think();
      const links = await page.$$('a[href^="/p/"], a[href="/search.html"]');
      if (links.length === 0) break;
      const link = links[Math.floor(Math.random() * links.length)];
      await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), link.click()]);
    }
    await think();
  }
} finally {
  await browser.close();
}
