// Drives Debian's headless Chromium (through playwright-core) over the
// pages of a running pentascope: the viewer, `/` with its upload form, and
// `/docs`. Run by crates/pentascope/tests/it/viewer.rs, which starts the
// server and uploads the images; the one argument is a JSON object:
//
//   { "base": "http://127.0.0.1:PORT", "shots": "/tmp/dir", "mode": "full",
//     "small": "image_1",            // several channels, Z and T
//     "large": "image_2",            // a plane with pyramid levels
//     "scaled": "image_3",           // an image with a physical pixel size
//     "upload": "/path/to/file.tif" }
//   { "base": ..., "shots": ..., "mode": "auth", "small": ..., "key": "ps_…",
//     "link": "/s/<token>/" }        // access control required
//   { "base": ..., "shots": ..., "mode": "catalogue", "total": 130,
//     "word": "kidney", "word_count": 10, "tag": "DAPI", "tag_count": 65,
//     "edit": "image_7" }             // the catalogue browser on `/`
//   { "base": ..., "shots": ..., "mode": "resumable", "file": "/path/to.tif",
//     "size": 1572864 }               // a resumable upload and a reload
//
// Prints one line per check and exits non-zero at the first failure.
// Screenshots go to `shots`.

import { chromium } from 'playwright-core';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const config = JSON.parse(process.argv[2]);
const base = config.base.replace(/\/$/, '');
const TIMEOUT = 240_000;

function check(cond, message) {
  if (!cond) throw new Error('FAILED: ' + message);
  console.log('ok: ' + message);
}

// console errors, uncaught exceptions and failed responses of a page
function watch(page, name) {
  const problems = [];
  const requests = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(name + ': console error: ' + m.text());
  });
  page.on('pageerror', (e) => problems.push(name + ': uncaught: ' + e.message));
  page.on('request', (r) => requests.push(r.url()));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(name + ': ' + r.status() + ' ' + r.url());
  });
  page.on('requestfailed', (r) => {
    const failure = r.failure();
    // tiles the viewer no longer needs are cancelled on purpose
    if (failure && /ERR_ABORTED/.test(failure.errorText)) return;
    problems.push(name + ': request failed: ' + r.url() + ' ' + (failure && failure.errorText));
  });
  return { problems, requests };
}

function noProblems(watched, what) {
  check(watched.problems.length === 0, what + ': no console errors, exceptions or failed requests' +
    (watched.problems.length ? '\n  ' + watched.problems.join('\n  ') : ''));
}

async function settled(page) {
  await page.waitForSelector('body[data-complete="true"]', { timeout: TIMEOUT });
}

// the canvas's pixels, summarised: a hash and the mean of R, G and B
async function picture(page) {
  return page.evaluate(() => {
    const c = document.getElementById('canvas');
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let hash = 2166136261;
    const sum = [0, 0, 0];
    for (let i = 0; i < data.length; i += 4) {
      for (let k = 0; k < 3; k++) {
        sum[k] += data[i + k];
        hash = Math.imul(hash ^ data[i + k], 16777619) >>> 0;
      }
    }
    const n = data.length / 4;
    return { hash, mean: sum.map((s) => s / n) };
  });
}

function differs(a, b) {
  return a.hash !== b.hash;
}

function fmt(p) {
  return 'mean RGB ' + p.mean.map((v) => v.toFixed(2)).join('/');
}

async function shot(page, name) {
  const path = join(config.shots, name + '.png');
  await page.screenshot({ path });
  console.log('screenshot: ' + path);
}

function renders(watched) {
  return watched.requests.filter((u) => u.includes('/render?')).map((u) => new URL(u));
}

async function viewerSmall(context) {
  const page = await context.newPage();
  const w = watch(page, 'viewer ' + config.small);
  await page.goto(base + '/view/' + config.small);
  await page.waitForSelector('body[data-ready="true"]', { timeout: TIMEOUT });
  await settled(page);
  const first = await picture(page);
  check(first.mean.some((v) => v > 1), 'the viewer draws ' + config.small + ' (' + fmt(first) + ')');
  const channels = await page.locator('.channel').count();
  check(channels >= 3, 'one control per channel (' + channels + ')');
  const hist = await page.evaluate(() => {
    const c = document.querySelector('.channel canvas.hist');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let lit = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] + d[i + 1] + d[i + 2] > 120) lit++;
    return lit;
  });
  check(hist > 50, 'the first channel\'s histogram is drawn (' + hist + ' bright pixels)');
  const meta = await page.locator('#meta-list').innerText();
  check(meta.includes(config.small) && meta.includes('uint16'), 'the metadata is shown beside the picture');
  await shot(page, 'viewer-small-initial');

  // Z: one step with the keyboard, as a user would
  const zBefore = await page.inputValue('#z-slider');
  await page.focus('#z-slider');
  await page.keyboard.press('ArrowRight');
  await settled(page);
  const zAfter = await page.inputValue('#z-slider');
  check(zAfter !== zBefore, 'the Z slider moved from ' + zBefore + ' to ' + zAfter);
  const afterZ = await picture(page);
  check(differs(first, afterZ), 'moving Z changes the picture (' + fmt(first) + ' → ' + fmt(afterZ) + ')');
  const lastZ = renders(w).pop();
  check(lastZ.searchParams.get('z') === zAfter, 'the viewer asked /render for z=' + zAfter);
  await shot(page, 'viewer-small-z' + zAfter);

  // a channel off
  await page.click('.channel[data-channel="1"] .ch-active');
  await settled(page);
  const afterToggle = await picture(page);
  check(differs(afterZ, afterToggle), 'turning channel 2 off changes the picture (' + fmt(afterZ) + ' → ' + fmt(afterToggle) + ')');
  const c = renders(w).pop().searchParams.get('c');
  check(/(^|,)-2\|/.test(c), 'the c= string marks channel 2 inactive: c=' + c);
  await shot(page, 'viewer-small-channel2-off');

  // the window of channel 1, typed
  await page.fill('.channel[data-channel="0"] .ch-end', '30000');
  await page.press('.channel[data-channel="0"] .ch-end', 'Enter');
  await settled(page);
  const afterWindow = await picture(page);
  check(differs(afterToggle, afterWindow), 'a narrower window of channel 1 changes the picture');
  const cw = renders(w).pop().searchParams.get('c');
  check(/^1\|[-0-9.e]+:30000\$/.test(cw), 'the window goes into c=: ' + cw);

  // a colour
  await page.evaluate(() => {
    const input = document.querySelector('.channel[data-channel="0"] .ch-color');
    input.value = '#00ffff';
    input.dispatchEvent(new Event('input', { bubbles: true }));
  });
  await settled(page);
  const afterColor = await picture(page);
  check(differs(afterWindow, afterColor), 'a new colour for channel 1 changes the picture');
  check(renders(w).pop().searchParams.get('c').startsWith('1|') &&
    renders(w).pop().searchParams.get('c').includes('$00FFFF'), 'the colour goes into c=');

  // maximum projection
  await page.selectOption('#projection', 'intmax');
  await settled(page);
  const afterMax = await picture(page);
  check(differs(afterColor, afterMax), 'the maximum projection changes the picture');
  const p = renders(w).pop();
  check(p.searchParams.get('p') === 'intmax' && !p.searchParams.has('z'), 'the projection asks for p=intmax');
  await shot(page, 'viewer-small-max-projection');

  // T
  await page.focus('#t-slider');
  await page.keyboard.press('ArrowRight');
  await settled(page);
  const afterT = await picture(page);
  check(differs(afterMax, afterT), 'moving T changes the picture');
  noProblems(w, 'viewer ' + config.small);
  await page.close();
}

async function viewerLarge(context) {
  const page = await context.newPage();
  const w = watch(page, 'viewer ' + config.large);
  const tiles = () =>
    renders(w)
      .filter((u) => u.searchParams.has('tile'))
      .map((u) => u.searchParams.get('tile').split(',').map(Number));
  await page.goto(base + '/view/' + config.large);
  await page.waitForSelector('body[data-ready="true"]', { timeout: TIMEOUT });
  await settled(page);
  const levels = await page.evaluate(() => window.pentascopeViewer.probe.level);
  const fitTiles = tiles();
  check(fitTiles.length >= 2, 'the fitted large plane is drawn from ' + fitTiles.length + ' tiles, level ' + levels +
    ' (' + fitTiles.map((t) => t.join(',')).join(' ') + ')');
  check(renders(w).every((u) => u.searchParams.has('tile')), 'every /render of the large plane is a tile');
  const fitted = await picture(page);
  check(fitted.mean.some((v) => v > 1), 'the large plane is drawn (' + fmt(fitted) + ')');
  await shot(page, 'viewer-large-fit');

  // zoom in with the wheel, over the canvas's middle
  const box = await page.locator('#canvas').boundingBox();
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await page.mouse.move(cx, cy);
  for (let i = 0; i < 5; i++) {
    await page.mouse.wheel(0, -120);
    await page.waitForTimeout(60);
  }
  await settled(page);
  const zoomedLevel = await page.evaluate(() => window.pentascopeViewer.probe.level);
  const zoomTiles = tiles().slice(fitTiles.length);
  check(zoomedLevel < levels, 'zooming in chooses a finer level (' + levels + ' → ' + zoomedLevel + ')');
  check(zoomTiles.some((t) => t[0] === zoomedLevel), 'zooming in requests tiles of level ' + zoomedLevel +
    ' (' + zoomTiles.filter((t) => t[0] === zoomedLevel).map((t) => t.join(',')).join(' ') + ')');
  const zoomed = await picture(page);
  check(differs(fitted, zoomed), 'the zoomed picture differs');
  await shot(page, 'viewer-large-zoomed');

  // pan by dragging
  const before = tiles().length;
  await page.mouse.move(cx, cy);
  await page.mouse.down();
  await page.mouse.move(cx + 300, cy + 200, { steps: 8 });
  await page.mouse.up();
  await settled(page);
  const panTiles = tiles().slice(before);
  check(panTiles.length > 0, 'dragging requests the tiles that come into view (' +
    panTiles.map((t) => t.join(',')).join(' ') + ')');
  const panned = await picture(page);
  check(differs(zoomed, panned), 'the panned picture differs');
  await shot(page, 'viewer-large-panned');

  // all the way in, over the brightest part of the picture: full-resolution
  // tiles, pixels as squares
  const bright = await page.evaluate(() => {
    const c = document.getElementById('canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let best = [c.width / 2, c.height / 2, -1];
    for (let y = 8; y < c.height - 40; y += 8) {
      for (let x = 8; x < c.width - 8; x += 8) {
        const v = d[(y * c.width + x) * 4];
        if (v > best[2]) best = [x, y, v];
      }
    }
    const r = c.getBoundingClientRect();
    return [r.left + (best[0] * r.width) / c.width, r.top + (best[1] * r.height) / c.height];
  });
  await page.mouse.move(bright[0], bright[1]);
  for (let i = 0; i < 8; i++) {
    await page.mouse.wheel(0, -500);
    await page.waitForTimeout(60);
  }
  await settled(page);
  const deepest = await page.evaluate(() => window.pentascopeViewer.probe.level);
  check(deepest === 0 && tiles().some((t) => t[0] === 0), 'zoomed far in, level 0 tiles are drawn');
  await shot(page, 'viewer-large-level0');
  noProblems(w, 'viewer ' + config.large);
  await page.close();
}

async function viewerScaled(context) {
  const page = await context.newPage();
  const w = watch(page, 'viewer ' + config.scaled);
  await page.goto(base + '/view/' + config.scaled);
  await page.waitForSelector('body[data-ready="true"]', { timeout: TIMEOUT });
  await settled(page);
  const bar = await page.evaluate(() => document.getElementById('canvas').dataset.scaleBar || '');
  check(/^[0-9.]+ (µm|nm|mm|m)$/.test(bar), 'a scale bar from the physical pixel size: ' + bar);
  const meta = await page.locator('#meta-list').innerText();
  check(/pixel size x\s+[0-9.]+ micrometer/.test(meta), 'the pixel size is in the metadata');
  await shot(page, 'viewer-scaled');
  // zooming changes the bar's length or label
  const box = await page.locator('#canvas').boundingBox();
  await page.mouse.move(box.x + box.width / 2, box.y + box.height / 2);
  await page.mouse.wheel(0, -800);
  await settled(page);
  const bar2 = await page.evaluate(() => document.getElementById('canvas').dataset.scaleBar || '');
  check(bar2 !== bar, 'the scale bar follows the zoom (' + bar + ' → ' + bar2 + ')');
  noProblems(w, 'viewer ' + config.scaled);
  await page.close();
}

async function thumbnailsLoaded(page) {
  await page.waitForSelector('#images[data-count]', { timeout: TIMEOUT });
  await page.waitForFunction(() => {
    const n = Number(document.getElementById('images').dataset.count);
    return document.querySelectorAll('#images img[data-loaded="true"]').length === n;
  }, null, { timeout: TIMEOUT });
  return page.evaluate(() => Number(document.getElementById('images').dataset.count));
}

async function index(context) {
  const page = await context.newPage();
  const w = watch(page, 'index');
  await page.goto(base + '/');
  const n = await thumbnailsLoaded(page);
  check(n >= 3, '/ shows ' + n + ' images, every thumbnail loaded');
  const hrefs = await page.$$eval('#images a.card', (as) => as.map((a) => a.getAttribute('href')));
  check(hrefs.includes('view/' + config.small), '/ links to the viewer of ' + config.small);
  await shot(page, 'index');

  // upload through the form; the upload is slowed so that the progress
  // bar has something to show
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 1_500_000,
  });
  await page.setInputFiles('#upload-file', config.upload);
  await page.click('#upload-button');
  await page.waitForSelector('#upload-progress:not([hidden])', { timeout: 10_000 });
  await page.waitForSelector('#upload-form[data-state="done"], #upload-form[data-state="failed"]', { timeout: TIMEOUT });
  const outcome = await page.$eval('#upload-form', (f) => f.dataset.state);
  check(outcome === 'done', 'the upload through the form succeeds: ' + (await page.locator('#upload-status').innerText()));
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1,
  });
  const events = await page.evaluate(() => window.pentascopeUploads);
  const last = events[events.length - 1];
  check(events.length >= 1 && last.total > 0 && last.loaded === last.total,
    'the progress bar followed the upload (' + events.length + ' progress events, ' +
    events.map((e) => Math.round((100 * e.loaded) / e.total) + '%').join(' ') + ')');
  const value = await page.$eval('#upload-progress', (p) => p.value);
  check(value === 100, 'the progress bar ends full');
  const id = await page.$eval('#upload-form', (f) => f.dataset.imageId);
  const status = await page.locator('#upload-status').innerText();
  check(status.includes(id), 'the page says the upload is ' + id + ': ' + status);
  const m = await thumbnailsLoaded(page);
  check(m === n + 1, 'the list is refreshed with the new image (' + n + ' → ' + m + ')');
  check(await page.locator('#images a.card[data-image-id="' + id + '"] img[data-loaded="true"]').count() === 1,
    'the new image has its thumbnail');
  await shot(page, 'index-after-upload');
  noProblems(w, 'index');
  await page.close();
}

async function docs(context) {
  const page = await context.newPage();
  const w = watch(page, 'docs');
  await page.goto(base + '/docs');
  await page.waitForSelector('#routes[data-count]', { timeout: TIMEOUT });
  const doc = await (await fetch(base + '/openapi.json')).json();
  let count = 0;
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of Object.keys(item)) {
      if (method === 'parameters') continue;
      const section = page.locator('section.op[data-path="' + path + '"][data-method="' + method + '"]');
      if ((await section.count()) !== 1) throw new Error('FAILED: /docs lacks ' + method + ' ' + path);
      count++;
    }
  }
  check(count >= 20, '/docs shows every one of the ' + count + ' documented routes');
  const render = page.locator('section.op[data-path="/render"][data-method="get"]');
  const text = await render.innerText();
  check(['image_id', 'region', 'tile', '400'].every((s) => text.includes(s)),
    '/docs shows the parameters and responses of GET /render');
  await shot(page, 'docs');
  await render.scrollIntoViewIfNeeded();
  await shot(page, 'docs-render');
  noProblems(w, 'docs');
  await page.close();
}

async function auth(browser) {
  // a key given once in the address: kept for the tab, taken off the address
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page = await context.newPage();
  const w = watch(page, 'viewer with ?key=');
  await page.goto(base + '/view/' + config.small + '?key=' + encodeURIComponent(config.key));
  await page.waitForSelector('body[data-ready="true"]', { timeout: TIMEOUT });
  await settled(page);
  check(!page.url().includes('key='), 'the key is taken off the address (' + page.url() + ')');
  const pic = await picture(page);
  check(pic.mean.some((v) => v > 1), 'the viewer draws with the key (' + fmt(pic) + ')');
  await shot(page, 'auth-viewer');
  // the same tab keeps the key for the other pages
  await page.goto(base + '/');
  const n = await thumbnailsLoaded(page);
  check(n >= 1, '/ lists ' + n + ' image(s) with the kept key');
  noProblems(w, 'pages with ?key=');
  await context.close();

  // no key: the list says so; a key typed into the field opens it
  const typed = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const page2 = await typed.newPage();
  await page2.goto(base + '/');
  await page2.waitForFunction(() => /API key/.test(document.getElementById('list-status').textContent),
    null, { timeout: TIMEOUT });
  check(true, 'without a key / asks for one: ' + (await page2.locator('#list-status').innerText()));
  await shot(page2, 'auth-index-no-key');
  await page2.fill('#key-input', config.key);
  await page2.click('#key-save');
  const m = await thumbnailsLoaded(page2);
  check(m >= 1, 'a key typed into the page opens the list (' + m + ' image(s))');
  await typed.close();

  // a signed link opens the viewer without any key
  if (config.link) {
    const linked = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    const page3 = await linked.newPage();
    const w3 = watch(page3, 'viewer under a signed link');
    await page3.goto(base + config.link + 'view/' + config.small);
    await page3.waitForSelector('body[data-ready="true"]', { timeout: TIMEOUT });
    await settled(page3);
    const p3 = await picture(page3);
    check(p3.mean.some((v) => v > 1), 'the viewer under a signed link draws (' + fmt(p3) + ')');
    check(w3.requests.filter((u) => u.includes('/render?')).every((u) => u.startsWith(base + config.link)),
      'its /render calls go under the link');
    await page3.focus('#z-slider');
    await page3.keyboard.press('ArrowRight');
    await settled(page3);
    check(differs(p3, await picture(page3)), 'Z moves under the link too');
    await shot(page3, 'link-viewer');
    noProblems(w3, 'viewer under a signed link');
    await linked.close();
  }
}

// `/` as a catalogue: the first page only, paging by cursor, a search as
// it is typed, a tag chip, a dataset; the viewer's catalogue panel saves
async function catalogue(context) {
  const page = await context.newPage();
  const w = watch(page, 'catalogue');
  const started = Date.now();
  await page.goto(base + '/');
  let n = await thumbnailsLoaded(page);
  const firstScreen = Date.now() - started;
  const total = await page.$eval('#images', (g) => Number(g.dataset.total));
  check(total === config.total && n === 48, '/ shows the first 48 of ' + total + ' images, thumbnails loaded (' + firstScreen + ' ms to the first screen)');
  const thumbs = w.requests.filter((u) => u.includes('/thumbnail?')).length;
  check(thumbs === 48, 'only the shown page\'s thumbnails are asked for (' + thumbs + ')');
  await shot(page, 'catalogue');
  const firstIds = await page.$$eval('#images a.card', (as) => as.map((a) => a.dataset.imageId));
  await page.click('#next-page');
  await page.waitForFunction(() => document.getElementById('page-number').textContent.startsWith('page 2'), null, { timeout: TIMEOUT });
  n = await thumbnailsLoaded(page);
  const secondIds = await page.$$eval('#images a.card', (as) => as.map((a) => a.dataset.imageId));
  check(n === 48 && secondIds.every((id) => !firstIds.includes(id)), 'the next page shows 48 other images');
  await page.click('#prev-page');
  await page.waitForFunction(() => document.getElementById('page-number').textContent.startsWith('page 1'), null, { timeout: TIMEOUT });
  const again = await page.$$eval('#images a.card', (as) => as.map((a) => a.dataset.imageId));
  check(JSON.stringify(again) === JSON.stringify(firstIds), 'previous goes back to the same first page');

  await page.type('#search', config.word, { delay: 40 });
  await page.waitForFunction((k) => Number(document.getElementById('images').dataset.total) === k && document.getElementById('images').dataset.state === 'done',
    config.word_count, { timeout: TIMEOUT });
  n = await thumbnailsLoaded(page);
  check(n === Math.min(config.word_count, 48), 'typing "' + config.word + '" narrows the thumbnails to ' + config.word_count + ' (' + n + ' on the first page)');
  await shot(page, 'catalogue-search');
  await page.fill('#search', '');
  await page.waitForFunction((k) => Number(document.getElementById('images').dataset.total) === k, config.total, { timeout: TIMEOUT });
  await page.click('#tags button[data-tag="' + config.tag + '"]');
  await page.waitForFunction((k) => Number(document.getElementById('images').dataset.total) === k && document.getElementById('images').dataset.state === 'done',
    config.tag_count, { timeout: TIMEOUT });
  check(true, 'the tag chip ' + config.tag + ' narrows to ' + config.tag_count);
  const dataset = page.locator('#datasets li[data-dataset-id]').first();
  const expected = Number(await dataset.locator('span.muted').innerText());
  await dataset.click();
  await page.waitForFunction(() => document.getElementById('images').dataset.state === 'done' &&
    document.getElementById('filters').textContent.includes('dataset'), null, { timeout: TIMEOUT });
  const inBoth = await page.$eval('#images', (g) => Number(g.dataset.total));
  check(inBoth <= expected, 'a dataset and a tag combine (' + inBoth + ' of the dataset\'s ' + expected + ')');
  await shot(page, 'catalogue-filters');
  noProblems(w, 'catalogue');
  await page.close();

  // the viewer's catalogue panel
  const viewer = await context.newPage();
  const wv = watch(viewer, 'catalogue panel');
  await viewer.goto(base + '/view/' + config.edit);
  await viewer.waitForSelector('body[data-ready="true"]', { timeout: TIMEOUT });
  await viewer.fill('#edit-name', 'Renamed in the browser');
  await viewer.fill('#edit-tags', 'edited, browser');
  await viewer.fill('#edit-annotations', 'Stain=DAPI\nMouse=M99');
  await viewer.click('#edit-save');
  await viewer.waitForSelector('#catalogue-edit[data-saved]', { timeout: TIMEOUT });
  await viewer.fill('#edit-dataset', 'Made in the viewer');
  await viewer.click('#edit-add-dataset');
  await viewer.waitForFunction(() => document.getElementById('edit-datasets').textContent.includes('Made in the viewer'), null, { timeout: TIMEOUT });
  const saved = await (await fetch(base + '/images/' + config.edit)).json();
  check(saved.name === 'Renamed in the browser' && JSON.stringify(saved.tags) === '["edited","browser"]' &&
    JSON.stringify(saved.annotations) === '[["Stain","DAPI"],["Mouse","M99"]]' && saved.datasets.some((d) => d.name === 'Made in the viewer'),
    'the viewer\'s panel saved name, tags, annotations and a dataset: ' + JSON.stringify([saved.name, saved.tags, saved.annotations]));
  await shot(viewer, 'catalogue-panel');
  noProblems(wv, 'catalogue panel');
  await viewer.close();
}

// the form's resumable uploads (tus) for a small file: thresholds lowered,
// the upload slowed, the page reloaded a third of the way; after the reload
// the page shows the unfinished upload's progress, and the same file
// chosen again resumes from the server's offset and is published
async function resumable(context) {
  const page = await context.newPage();
  const w = watch(page, 'resumable');
  const small = async () => {
    await page.waitForSelector('#upload-form');
    await page.$eval('#upload-form', (f) => {
      f.dataset.resumableThreshold = '1000';
      f.dataset.resumableChunk = String(256 * 1024);
    });
  };
  await page.goto(base + '/');
  await small();
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: 300_000,
  });
  await page.setInputFiles('#upload-file', config.file);
  await page.click('#upload-button');
  await page.waitForFunction(
    (size) => window.pentascopeUploads.some((e) => e.loaded > size / 3), config.size, { timeout: TIMEOUT });
  const sentBefore = await page.evaluate(() => Math.max(...window.pentascopeUploads.map((e) => e.loaded)));
  await page.reload();
  await cdp.send('Network.emulateNetworkConditions', {
    offline: false, latency: 0, downloadThroughput: -1, uploadThroughput: -1,
  });
  await page.waitForSelector('#upload-form[data-state="unfinished"]', { timeout: TIMEOUT });
  const shown = await page.$eval('#upload-form', (f) => Number(f.dataset.resumeOffset));
  const bar = await page.$eval('#upload-progress', (p) => ({ hidden: p.hidden, value: p.value }));
  const text = await page.locator('#upload-status').innerText();
  check(shown > 0 && !bar.hidden && bar.value > 0 && text.includes('unfinished upload'),
    'after the reload the page shows the unfinished upload at ' + shown + ' bytes (' +
    Math.round(bar.value) + '%): ' + text);
  await shot(page, 'resumable-after-reload');
  // the server ends the request the reload cut before it is resumed
  await page.waitForTimeout(1500);
  await small();
  await page.setInputFiles('#upload-file', config.file);
  await page.click('#upload-button');
  await page.waitForSelector('#upload-form[data-state="done"], #upload-form[data-state="failed"]', { timeout: TIMEOUT });
  const form = await page.$eval('#upload-form', (f) => ({ ...f.dataset }));
  check(form.state === 'done', 'the resumed upload is published: ' + (await page.locator('#upload-status').innerText()));
  check(form.resumed === 'true', 'the same file chosen again resumed the stored upload');
  const events = await page.evaluate(() => window.pentascopeUploads);
  check(events.length > 0 && events[0].loaded >= shown,
    'the progress went on from ' + events[0].loaded + ' bytes (' + sentBefore + ' were sent before the reload), not from 0');
  console.log('image: ' + form.imageId);
  noProblems(w, 'resumable upload');
  await page.close();
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking'],
});
let failure = null;
try {
  if (config.mode === 'auth') {
    await auth(browser);
  } else if (config.mode === 'resumable') {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    await resumable(context);
    await context.close();
  } else if (config.mode === 'catalogue') {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    await catalogue(context);
    await context.close();
  } else {
    const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    await viewerSmall(context);
    await viewerLarge(context);
    await viewerScaled(context);
    await index(context);
    await docs(context);
    await context.close();
  }
} catch (e) {
  failure = e;
} finally {
  await browser.close();
}
if (failure) {
  console.error(failure.stack || String(failure));
  process.exit(1);
}
writeFileSync(join(config.shots, 'DONE'), 'ok\n');
console.log('all browser checks passed');
