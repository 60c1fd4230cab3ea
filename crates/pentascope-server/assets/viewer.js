// `/view/{id}`: one image. Every change of the controls builds OMERO's
// `c=` string and re-requests `/render`: the whole plane for planes that
// fit one 512-pixel tile, else the pyramid tiles (`tile=level,col,row`) of
// the level that matches the zoom, over the coarsest level's single tile
// while they load. Zoom with the wheel (or double click), pan by dragging.
'use strict';

(() => {
  const P = Pentascope;
  const $ = (id) => document.getElementById(id);
  const imageId = decodeURIComponent(window.location.pathname.split('/').pop());
  const canvas = $('canvas');
  const ctx = canvas.getContext('2d');
  const stage = $('stage');
  const stageStatus = $('stage-status');
  const body = document.body;

  // what is shown: the controls' state
  const state = { t: 0, z: 0, projection: '', grey: false, channels: [] };
  // where: the full-resolution pixel at the canvas's top left, and CSS
  // pixels per full-resolution pixel
  const view = { x: 0, y: 0, scale: 1 };
  let meta = null;
  let stats = null;
  let width = 0;
  let height = 0;
  let tileSize = 512;
  let levels = [];
  let fitted = false;

  // pictures by `<state key>|<tile>`: ImageBitmaps, least recently used
  // first; in flight: AbortControllers by the same keys
  const MAX_CACHED = 200;
  const MAX_IN_FLIGHT = 6;
  const cache = new Map();
  const inFlight = new Map();
  const failed = new Map();
  let queue = [];
  let currentKey = '';
  let previousKey = '';
  let fetchTimer = 0;
  let drawPending = false;

  // for the browser test and the curious: counters and the last routes
  const probe = { requested: 0, loaded: 0, failed: 0, aborted: 0, routes: [], level: 0, drawn: 0 };
  window.pentascopeViewer = { state, view, probe };

  // ---- the rendering request -------------------------------------------

  function number(v) {
    if (Number.isInteger(v)) return String(v);
    return String(Number(v.toPrecision(7)));
  }

  function channelString() {
    return state.channels
      .map((ch, i) => {
        let start = number(ch.start);
        let end = number(ch.end);
        if (!(Number(start) < Number(end))) {
          start = String(ch.start);
          end = String(ch.end);
        }
        return (ch.active ? '' : '-') + (i + 1) + '|' + start + ':' + end + '$' + ch.color;
      })
      .join(',');
  }

  function anyActive() {
    return state.channels.some((ch) => ch.active);
  }

  // the query of /render for the current state (without tile)
  function stateQuery() {
    const q = ['image_id=' + encodeURIComponent(imageId), 'time=' + state.t];
    if (state.projection) q.push('p=' + state.projection);
    else q.push('z=' + state.z);
    q.push('c=' + encodeURIComponent(channelString()));
    q.push('m=' + (state.grey ? 'g' : 'c'));
    return q.join('&');
  }

  // ---- tiles -------------------------------------------------------------

  function tiled() {
    return levels.length > 1;
  }

  // the pyramid level for the zoom: the coarsest whose pixels are not
  // larger than the screen's
  function levelForZoom() {
    if (!tiled()) return 0;
    const devicePerPixel = view.scale * (window.devicePixelRatio || 1);
    const wanted = Math.floor(Math.log2(1 / devicePerPixel));
    return Math.max(0, Math.min(levels.length - 1, wanted));
  }

  function tileAt(level, col, row) {
    const span = tileSize * 2 ** level;
    return {
      id: 't' + level + ',' + col + ',' + row,
      route: '&tile=' + level + ',' + col + ',' + row,
      level,
      x0: col * span,
      y0: row * span,
      x1: Math.min((col + 1) * span, width),
      y1: Math.min((row + 1) * span, height),
    };
  }

  function wholePlane() {
    return { id: 'plane', route: '', level: 0, x0: 0, y0: 0, x1: width, y1: height };
  }

  // the coarsest picture of the whole plane, drawn first
  function background() {
    return tiled() ? tileAt(levels.length - 1, 0, 0) : wholePlane();
  }

  // the tiles the canvas shows now, background first
  function neededTiles() {
    const back = background();
    if (!tiled()) return [back];
    const level = levelForZoom();
    probe.level = level;
    if (level === back.level) return [back];
    const span = tileSize * 2 ** level;
    const cw = canvas.clientWidth / view.scale;
    const ch = canvas.clientHeight / view.scale;
    const x0 = Math.max(0, view.x);
    const y0 = Math.max(0, view.y);
    const x1 = Math.min(width, view.x + cw);
    const y1 = Math.min(height, view.y + ch);
    const out = [back];
    if (x1 <= x0 || y1 <= y0) return out;
    const [c0, c1] = [Math.floor(x0 / span), Math.floor((x1 - 1e-9) / span)];
    const [r0, r1] = [Math.floor(y0 / span), Math.floor((y1 - 1e-9) / span)];
    // the middle first: it is what the eye looks at
    const mx = (c0 + c1) / 2;
    const my = (r0 + r1) / 2;
    const list = [];
    for (let r = r0; r <= r1; r++) {
      for (let c = c0; c <= c1; c++) list.push(tileAt(level, c, r));
    }
    list.sort(
      (a, b) =>
        Math.hypot(a.x0 / span - mx, a.y0 / span - my) - Math.hypot(b.x0 / span - mx, b.y0 / span - my),
    );
    return out.concat(list);
  }

  function cached(key) {
    const bitmap = cache.get(key);
    if (bitmap) {
      cache.delete(key);
      cache.set(key, bitmap);
    }
    return bitmap;
  }

  function remember(key, bitmap) {
    cache.set(key, bitmap);
    while (cache.size > MAX_CACHED) {
      const [oldest, old] = cache.entries().next().value;
      cache.delete(oldest);
      old.close();
    }
  }

  function markBusy() {
    const busy = queue.length > 0 || inFlight.size > 0 || fetchTimer !== 0;
    body.dataset.busy = busy ? 'true' : 'false';
  }

  // asks for the missing tiles of the current state; drops what is no
  // longer wanted
  function fetchNeeded() {
    fetchTimer = 0;
    if (!meta) return;
    const key = currentKey;
    const wanted = anyActive() ? neededTiles() : [];
    const wantedKeys = new Set(wanted.map((t) => key + '|' + t.id));
    for (const [k, controller] of inFlight) {
      if (!k.startsWith(key + '|')) {
        controller.abort();
        inFlight.delete(k);
        probe.aborted++;
      }
    }
    queue = wanted.filter((t) => {
      const k = key + '|' + t.id;
      return !cache.has(k) && !inFlight.has(k) && !failed.has(k) && wantedKeys.has(k);
    }).map((t) => ({ key: key + '|' + t.id, route: '/render?' + key + t.route }));
    pump();
    scheduleDraw();
  }

  function pump() {
    while (inFlight.size < MAX_IN_FLIGHT && queue.length) {
      const job = queue.shift();
      const controller = new AbortController();
      inFlight.set(job.key, controller);
      probe.requested++;
      probe.routes.push(job.route);
      if (probe.routes.length > 400) probe.routes.splice(0, 100);
      P.blob(job.route, controller.signal)
        .then((blob) => createImageBitmap(blob))
        .then((bitmap) => {
          if (inFlight.get(job.key) !== controller) {
            bitmap.close();
            return;
          }
          inFlight.delete(job.key);
          probe.loaded++;
          remember(job.key, bitmap);
          stageStatus.textContent = '';
          scheduleDraw();
        })
        .catch((e) => {
          if (inFlight.get(job.key) === controller) inFlight.delete(job.key);
          if (e && e.name === 'AbortError') return;
          probe.failed++;
          failed.set(job.key, e);
          stageStatus.textContent = 'rendering failed: ' + P.explain(e);
          scheduleDraw();
        })
        .finally(() => {
          pump();
          markBusy();
        });
    }
    markBusy();
  }

  // ---- drawing -------------------------------------------------------------

  function scheduleDraw() {
    if (drawPending) return;
    drawPending = true;
    requestAnimationFrame(draw);
  }

  // a state or view change: draw what there is now, fetch the rest soon
  // (a dragged slider asks only for where it stops)
  function changed() {
    body.dataset.complete = 'false';
    const key = stateQuery();
    if (key !== currentKey) {
      const back = background();
      if (currentKey && cache.has(currentKey + '|' + back.id)) previousKey = currentKey;
      currentKey = key;
      failed.clear();
      $('c-string').textContent = channelString();
    }
    scheduleDraw();
    clearTimeout(fetchTimer);
    fetchTimer = setTimeout(fetchNeeded, 40);
    markBusy();
  }

  function drawTile(tile, bitmap) {
    const x = (tile.x0 - view.x) * view.scale;
    const y = (tile.y0 - view.y) * view.scale;
    const w = (tile.x1 - tile.x0) * view.scale;
    const h = (tile.y1 - tile.y0) * view.scale;
    ctx.drawImage(bitmap, x, y, w, h);
  }

  function draw() {
    drawPending = false;
    const dpr = window.devicePixelRatio || 1;
    const cw = canvas.clientWidth;
    const ch = canvas.clientHeight;
    if (canvas.width !== Math.round(cw * dpr) || canvas.height !== Math.round(ch * dpr)) {
      canvas.width = Math.round(cw * dpr);
      canvas.height = Math.round(ch * dpr);
    }
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = '#1b1d22';
    ctx.fillRect(0, 0, cw, ch);
    if (!meta) return;
    ctx.fillStyle = '#000';
    ctx.fillRect(-view.x * view.scale, -view.y * view.scale, width * view.scale, height * view.scale);
    let complete = true;
    if (anyActive()) {
      const tiles = neededTiles();
      // magnified beyond the screen's pixels: show them as squares
      ctx.imageSmoothingEnabled = view.scale * dpr < 1.5;
      tiles.forEach((tile) => {
        const now = cached(currentKey + '|' + tile.id);
        if (now) {
          drawTile(tile, now);
          return;
        }
        if (!failed.has(currentKey + '|' + tile.id)) complete = false;
        // the same place as the previous state showed it, until it comes
        const before = previousKey && cached(previousKey + '|' + tile.id);
        if (before) drawTile(tile, before);
      });
    }
    drawScaleBar(cw, ch);
    probe.drawn++;
    const idle = fetchTimer === 0 && inFlight.size === 0 && queue.length === 0;
    body.dataset.complete = complete && idle ? 'true' : 'false';
    updateZoomText();
  }

  // ---- scale bar ---------------------------------------------------------

  const METRES = {
    meter: 1, metre: 1, m: 1,
    centimeter: 1e-2, cm: 1e-2,
    millimeter: 1e-3, mm: 1e-3,
    micrometer: 1e-6, micron: 1e-6, um: 1e-6, 'µm': 1e-6,
    nanometer: 1e-9, nm: 1e-9,
    angstrom: 1e-10, 'Å': 1e-10,
    picometer: 1e-12, pm: 1e-12,
    inch: 0.0254, foot: 0.3048,
  };
  const DISPLAY = [
    [1, 'm'], [1e-3, 'mm'], [1e-6, 'µm'], [1e-9, 'nm'], [1e-12, 'pm'],
  ];

  function nice(target) {
    const p = 10 ** Math.floor(Math.log10(target));
    for (const m of [5, 2, 1]) if (m * p <= target) return m * p;
    return p;
  }

  function pixelSize() {
    const x = meta && meta.physical_sizes && meta.physical_sizes.x;
    return x && x.value > 0 ? x : null;
  }

  // a length in the pixel size's unit, written with the best SI prefix
  function lengthText(value, unit) {
    const f = METRES[unit];
    if (!f) return formatNumber(value) + ' ' + unit;
    const metres = value * f;
    const [g, name] = DISPLAY.find(([g]) => metres >= g * 0.9999) || DISPLAY[DISPLAY.length - 1];
    return formatNumber(metres / g) + ' ' + name;
  }

  function formatNumber(v) {
    return String(Number(v.toPrecision(4)));
  }

  function drawScaleBar(cw, ch) {
    const size = pixelSize();
    if (!size) return;
    const f = METRES[size.unit] || 1;
    // per CSS pixel, in metres (or in the unit when it is not a length we know)
    const perPixel = (size.value * f) / view.scale;
    const length = nice(perPixel * Math.min(160, cw / 4));
    const px = length / perPixel;
    const text = lengthText(length / f, size.unit);
    const x = 16;
    const y = ch - 22;
    ctx.save();
    ctx.fillStyle = 'rgba(0,0,0,0.55)';
    ctx.font = '13px system-ui, sans-serif';
    const tw = ctx.measureText(text).width;
    ctx.fillRect(x - 8, y - 24, Math.max(px, tw) + 16, 36);
    ctx.fillStyle = '#fff';
    ctx.fillRect(x, y, px, 5);
    ctx.textBaseline = 'bottom';
    ctx.fillText(text, x, y - 4);
    ctx.restore();
    canvas.dataset.scaleBar = text;
  }

  function updateZoomText() {
    const zoom = $('zoom-text');
    if (!zoom) return;
    const level = tiled() ? ' · level ' + levelForZoom() + ' of ' + (levels.length - 1) : '';
    zoom.textContent = Math.round(view.scale * 1000) / 10 + '%' + level;
  }

  // ---- zoom and pan ----------------------------------------------------

  function fit() {
    const cw = canvas.clientWidth || 1;
    const ch = canvas.clientHeight || 1;
    view.scale = Math.min(cw / width, ch / height);
    view.x = -(cw / view.scale - width) / 2;
    view.y = -(ch / view.scale - height) / 2;
    changed();
  }

  function zoomAt(factor, sx, sy) {
    const fitScale = Math.min(canvas.clientWidth / width, canvas.clientHeight / height);
    const scale = Math.max(fitScale / 4, Math.min(64, view.scale * factor));
    const px = view.x + sx / view.scale;
    const py = view.y + sy / view.scale;
    view.scale = scale;
    view.x = px - sx / scale;
    view.y = py - sy / scale;
    changed();
  }

  canvas.addEventListener(
    'wheel',
    (e) => {
      e.preventDefault();
      const r = canvas.getBoundingClientRect();
      const delta = e.deltaMode === 1 ? e.deltaY * 33 : e.deltaY;
      zoomAt(Math.exp(-delta * 0.002), e.clientX - r.left, e.clientY - r.top);
    },
    { passive: false },
  );
  canvas.addEventListener('dblclick', (e) => {
    const r = canvas.getBoundingClientRect();
    zoomAt(e.shiftKey ? 0.5 : 2, e.clientX - r.left, e.clientY - r.top);
  });
  let drag = null;
  canvas.addEventListener('pointerdown', (e) => {
    drag = { x: e.clientX, y: e.clientY, id: e.pointerId };
    canvas.setPointerCapture(e.pointerId);
    canvas.classList.add('dragging');
  });
  canvas.addEventListener('pointermove', (e) => {
    showCursor(e);
    if (!drag || drag.id !== e.pointerId) return;
    view.x -= (e.clientX - drag.x) / view.scale;
    view.y -= (e.clientY - drag.y) / view.scale;
    drag.x = e.clientX;
    drag.y = e.clientY;
    changed();
  });
  const endDrag = (e) => {
    if (drag && drag.id === e.pointerId) drag = null;
    canvas.classList.remove('dragging');
  };
  canvas.addEventListener('pointerup', endDrag);
  canvas.addEventListener('pointercancel', endDrag);

  function showCursor(e) {
    const out = $('cursor-text');
    if (!out || !meta) return;
    const r = canvas.getBoundingClientRect();
    const x = Math.floor(view.x + (e.clientX - r.left) / view.scale);
    const y = Math.floor(view.y + (e.clientY - r.top) / view.scale);
    if (x < 0 || y < 0 || x >= width || y >= height) {
      out.textContent = '';
      return;
    }
    let text = 'x ' + x + ', y ' + y;
    const size = pixelSize();
    if (size) {
      const ys = (meta.physical_sizes.y && meta.physical_sizes.y.value) || size.value;
      text += ' (' + lengthText(x * size.value, size.unit) + ', ' + lengthText(y * ys, size.unit) + ')';
    }
    out.textContent = text;
  }

  new ResizeObserver(() => {
    if (!meta) {
      scheduleDraw();
      return;
    }
    if (!fitted) {
      fitted = true;
      fit();
    } else changed();
  }).observe(stage);

  // ---- controls ----------------------------------------------------------

  function slider(id, max, value, onInput) {
    const input = $(id);
    const output = $(id.replace('slider', 'value'));
    input.max = String(max);
    input.value = String(value);
    input.disabled = max === 0;
    output.textContent = value + ' / ' + max;
    input.addEventListener('input', () => {
      output.textContent = input.value + ' / ' + max;
      onInput(Number(input.value));
      changed();
    });
  }

  function integerType() {
    return /^u?int/.test(meta.dtype);
  }

  function defaults() {
    return meta.rendering.channels.map((c, i) => ({
      active: c.active !== false,
      color: (c.color || 'FFFFFF').toUpperCase(),
      start: c.window.start,
      end: c.window.end,
      label: channelLabel(i),
    }));
  }

  function channelLabel(i) {
    const name = meta.channel_names && meta.channel_names[i];
    const acq = meta.acquisition && meta.acquisition.channels && meta.acquisition.channels[i];
    let label = name || 'channel ' + (i + 1);
    if (acq && acq.fluor && acq.fluor !== name) label += ' · ' + acq.fluor;
    return label;
  }

  // the window's slider domain: the histogram's range, widened to the window
  function domain(i) {
    const ch = state.channels[i];
    const h = stats && stats.histograms && stats.histograms[i];
    let lo = h && Number.isFinite(h.min) ? h.min : ch.start;
    let hi = h && Number.isFinite(h.max) ? h.max : ch.end;
    lo = Math.min(lo, ch.start);
    hi = Math.max(hi, ch.end);
    if (!(hi > lo)) hi = lo + 1;
    return [lo, hi];
  }

  function drawHistogram(i) {
    const panel = document.querySelector('.channel[data-channel="' + i + '"]');
    const hist = panel.querySelector('canvas.hist');
    const g = hist.getContext('2d');
    const ch = state.channels[i];
    const [lo, hi] = domain(i);
    const w = hist.width;
    const hgt = hist.height;
    g.clearRect(0, 0, w, hgt);
    g.fillStyle = '#111';
    g.fillRect(0, 0, w, hgt);
    const h = stats && stats.histograms && stats.histograms[i];
    const xOf = (v) => ((v - lo) / (hi - lo)) * w;
    // the window
    g.fillStyle = 'rgba(255,255,255,0.08)';
    g.fillRect(xOf(ch.start), 0, xOf(ch.end) - xOf(ch.start), hgt);
    if (h && h.counts && h.counts.length) {
      const top = Math.max(...h.counts.map((c) => Math.log1p(c))) || 1;
      const binWidth = (h.max - h.min) / h.counts.length;
      g.fillStyle = '#' + ch.color;
      g.globalAlpha = ch.active ? 0.9 : 0.35;
      h.counts.forEach((c, b) => {
        if (!c) return;
        const x0 = xOf(h.min + b * binWidth);
        const x1 = xOf(h.min + (b + 1) * binWidth);
        const bh = (Math.log1p(c) / top) * (hgt - 2);
        g.fillRect(x0, hgt - bh, Math.max(1, x1 - x0), bh);
      });
      g.globalAlpha = 1;
    } else {
      g.fillStyle = '#888';
      g.font = '11px system-ui, sans-serif';
      g.fillText('no histogram', 6, 14);
    }
    g.fillStyle = '#fff';
    g.fillRect(Math.round(xOf(ch.start)) - 1, 0, 2, hgt);
    g.fillRect(Math.round(xOf(ch.end)) - 1, 0, 2, hgt);
  }

  function syncChannel(i) {
    const panel = document.querySelector('.channel[data-channel="' + i + '"]');
    const ch = state.channels[i];
    const [lo, hi] = domain(i);
    const step = integerType() && hi - lo >= 100 ? 1 : (hi - lo) / 1000;
    for (const range of panel.querySelectorAll('input[type=range]')) {
      range.min = String(lo);
      range.max = String(hi);
      range.step = String(step);
    }
    panel.querySelector('.ch-active').checked = ch.active;
    panel.querySelector('.ch-color').value = '#' + ch.color.toLowerCase();
    panel.querySelector('.ch-start').value = number(ch.start);
    panel.querySelector('.ch-end').value = number(ch.end);
    panel.querySelector('.ch-start-range').value = String(ch.start);
    panel.querySelector('.ch-end-range').value = String(ch.end);
    panel.classList.toggle('off', !ch.active);
    drawHistogram(i);
  }

  // sets one end of a channel's window, keeping start below end
  function setWindow(i, which, value) {
    const ch = state.channels[i];
    if (!Number.isFinite(value)) return;
    const [lo, hi] = domain(i);
    const gap = integerType() ? 1 : (hi - lo) / 1e6;
    if (which === 'start') ch.start = Math.min(value, ch.end - gap);
    else ch.end = Math.max(value, ch.start + gap);
  }

  function buildChannels() {
    const box = $('channels');
    box.textContent = '';
    state.channels.forEach((ch, i) => {
      const panel = P.el(
        'div',
        { class: 'channel', 'data-channel': String(i) },
        P.el(
          'div',
          { class: 'ch-head' },
          P.el(
            'label',
            { class: 'ch-name' },
            P.el('input', { type: 'checkbox', class: 'ch-active', 'aria-label': 'show ' + ch.label }),
            ' ' + ch.label,
          ),
          P.el('input', { type: 'color', class: 'ch-color', title: 'colour of ' + ch.label }),
        ),
        P.el('canvas', { class: 'hist', width: 240, height: 48, title: 'histogram; drag to set the window' }),
        P.el('input', { type: 'range', class: 'ch-start-range', 'aria-label': 'window start' }),
        P.el('input', { type: 'range', class: 'ch-end-range', 'aria-label': 'window end' }),
        P.el(
          'div',
          { class: 'window' },
          P.el('input', { type: 'number', class: 'ch-start', step: 'any', 'aria-label': 'window start' }),
          ' – ',
          P.el('input', { type: 'number', class: 'ch-end', step: 'any', 'aria-label': 'window end' }),
          P.el('button', { type: 'button', class: 'ch-full', title: 'window over the whole histogram', text: 'full' }),
        ),
      );
      box.append(panel);
      const on = (selector, event, handler) =>
        panel.querySelector(selector).addEventListener(event, (e) => {
          handler(e);
          syncChannel(i);
          changed();
        });
      on('.ch-active', 'change', (e) => {
        ch.active = e.target.checked;
      });
      on('.ch-color', 'input', (e) => {
        ch.color = e.target.value.replace('#', '').toUpperCase();
      });
      on('.ch-start', 'change', (e) => setWindow(i, 'start', Number(e.target.value)));
      on('.ch-end', 'change', (e) => setWindow(i, 'end', Number(e.target.value)));
      on('.ch-start-range', 'input', (e) => setWindow(i, 'start', Number(e.target.value)));
      on('.ch-end-range', 'input', (e) => setWindow(i, 'end', Number(e.target.value)));
      on('.ch-full', 'click', () => {
        const h = stats && stats.histograms && stats.histograms[i];
        if (h && h.max > h.min) {
          ch.start = h.min;
          ch.end = h.max;
        }
      });
      // dragging on the histogram moves the nearer end of the window
      const hist = panel.querySelector('canvas.hist');
      let which = null;
      const valueAt = (e) => {
        const r = hist.getBoundingClientRect();
        const [lo, hi] = domain(i);
        return lo + ((e.clientX - r.left) / r.width) * (hi - lo);
      };
      hist.addEventListener('pointerdown', (e) => {
        const v = valueAt(e);
        which = Math.abs(v - ch.start) <= Math.abs(v - ch.end) ? 'start' : 'end';
        hist.setPointerCapture(e.pointerId);
        setWindow(i, which, v);
        syncChannel(i);
        changed();
      });
      hist.addEventListener('pointermove', (e) => {
        if (!which) return;
        setWindow(i, which, valueAt(e));
        syncChannel(i);
        changed();
      });
      hist.addEventListener('pointerup', () => {
        which = null;
      });
      syncChannel(i);
    });
  }

  // ---- metadata ------------------------------------------------------------

  function size(s) {
    return s && s.value !== undefined ? formatNumber(s.value) + ' ' + s.unit : null;
  }

  function showMetadata() {
    const dl = $('meta-list');
    dl.textContent = '';
    const row = (term, value) => {
      if (value === null || value === undefined || value === '') return;
      dl.append(P.el('dt', { text: term }), P.el('dd', { text: String(value) }));
    };
    const s = meta.shape;
    row('id', meta.image_id);
    row('file', meta.original_filename);
    row('kind', meta.kind === 'upload' ? null : meta.kind + (meta.source_image_id ? ' of ' + meta.source_image_id : ''));
    row('shape (TZCYX)', s.join(' × '));
    row('dtype', meta.dtype);
    row('flavour', meta.flavour + (meta.source_axes ? ' (' + meta.source_axes + ')' : ''));
    const ps = meta.physical_sizes || {};
    row('pixel size x', size(ps.x));
    row('pixel size y', size(ps.y));
    row('z step', size(ps.z));
    row('time step', size(ps.t));
    if (!ps.x) row('scale bar', 'none: the file states no pixel size');
    row('size', P.bytes(meta.byte_size));
    row('pyramid', levels.length + (levels.length === 1 ? ' level' : ' levels') + ', ' + tileSize + '-pixel tiles');
    row('uploaded', meta.created_at);
    row('owner', meta.owner);
    if (meta.public) row('public', 'yes');
    const acq = meta.acquisition || {};
    row('acquired', acq.date);
    const o = acq.objective;
    if (o) {
      const parts = [
        o.manufacturer,
        o.model,
        o.nominal_magnification ? o.nominal_magnification + '×' : null,
        o.lens_na ? 'NA ' + o.lens_na : null,
        o.immersion,
      ].filter(Boolean);
      row('objective', parts.join(' '));
    }
    (acq.channels || []).forEach((c, i) => {
      const parts = [
        c.fluor,
        c.excitation_wavelength ? 'ex ' + size(c.excitation_wavelength) : null,
        c.emission_wavelength ? 'em ' + size(c.emission_wavelength) : null,
        c.illumination,
      ].filter(Boolean);
      if (parts.length) row('channel ' + (i + 1), parts.join(', '));
    });
    (meta.warnings || []).forEach((w) => row('warning', w));
    $('title').textContent = meta.image_id + ' · ' + (meta.name || meta.original_filename || '');
    document.title = 'pentascope: ' + meta.image_id;
  }

  // ---- catalogue: name, description, tags, annotations, datasets -----------

  // annotations as the textarea holds them: one `key=value` a line
  function annotationLines(pairs) {
    return (pairs || []).map(([k, v]) => k + '=' + v.replace(/\n/g, ' ')).join('\n');
  }

  function parseAnnotations(text) {
    return text.split('\n').map((l) => l.trim()).filter(Boolean).map((line) => {
      const at = line.indexOf('=');
      if (at < 1) throw new Error('an annotation line is key=value: ' + line);
      return [line.slice(0, at).trim(), line.slice(at + 1).trim()];
    });
  }

  // the editable panel, for those who may change the image (not a signed link)
  function showCatalogue() {
    const box = $('catalogue-edit');
    if (!box || P.link) return;
    box.hidden = false;
    $('edit-name').value = meta.name || '';
    $('edit-description').value = meta.description || '';
    $('edit-tags').value = (meta.tags || []).join(', ');
    $('edit-annotations').value = annotationLines(meta.annotations);
    const list = $('edit-datasets');
    list.textContent = '';
    (meta.datasets || []).forEach((d) => {
      const remove = P.el('button', { type: 'button', class: 'chip', title: 'take the image out of ' + d.name, text: d.name + ' ×' });
      remove.addEventListener('click', () => saving(async () => {
        await P.json('/datasets/' + encodeURIComponent(d.dataset_id) + '/images/' + encodeURIComponent(imageId), { method: 'DELETE' });
      }));
      list.append(remove);
    });
  }

  // runs a change, then shows the image as the server now has it
  async function saving(change) {
    const status = $('edit-status');
    status.textContent = 'saving…';
    try {
      await change();
      meta = await P.json('/images/' + encodeURIComponent(imageId));
      showCatalogue();
      showMetadata();
      status.textContent = 'saved';
      $('catalogue-edit').dataset.saved = String(Date.now());
    } catch (e) {
      status.textContent = P.explain(e);
    }
  }

  function wireCatalogue() {
    if (!$('catalogue-edit') || P.link) return;
    $('edit-save').addEventListener('click', () => saving(async () => {
      const body = {
        name: $('edit-name').value.trim() || meta.name,
        description: $('edit-description').value,
        tags: $('edit-tags').value.split(',').map((t) => t.trim()).filter(Boolean),
        annotations: parseAnnotations($('edit-annotations').value),
      };
      await P.json('/images/' + encodeURIComponent(imageId), {
        method: 'PATCH',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
      });
    }));
    $('edit-add-dataset').addEventListener('click', () => saving(async () => {
      const name = $('edit-dataset').value.trim();
      if (!name) return;
      // the caller's dataset of that name, made if there is none
      const found = await P.json('/datasets?limit=1000&q=' + encodeURIComponent(name));
      let dataset = found.datasets.find((d) => d.name === name);
      if (!dataset) {
        dataset = await P.json('/datasets', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ name }),
        });
      }
      await P.json('/datasets/' + encodeURIComponent(dataset.dataset_id) + '/images/' + encodeURIComponent(imageId), { method: 'PUT' });
      $('edit-dataset').value = '';
    }));
  }

  // ---- start ---------------------------------------------------------------

  function addStatusBar() {
    const bar = P.el(
      'div',
      { class: 'stage-bar' },
      P.el('span', { id: 'zoom-text' }),
      P.el('span', { id: 'cursor-text' }),
    );
    stage.append(bar);
  }

  async function start() {
    P.keyBox(() => window.location.reload());
    // a signed link opens this image only: no list, no key
    if (P.link) {
      $('nav').hidden = true;
      $('home-link').removeAttribute('href');
    }
    addStatusBar();
    try {
      meta = await P.json('/images/' + encodeURIComponent(imageId));
    } catch (e) {
      stageStatus.textContent = 'cannot open ' + imageId + ': ' + P.explain(e);
      body.dataset.complete = 'true';
      body.dataset.error = 'true';
      return;
    }
    try {
      stats = await P.json('/statistics?image_id=' + encodeURIComponent(imageId));
    } catch (_) {
      stats = null; // the viewer works without histograms
    }
    [, , , height, width] = meta.shape;
    levels = meta.levels || [];
    tileSize = (meta.rendering && meta.rendering.tile_size) || 512;
    state.t = 0;
    state.z = Math.floor(meta.shape[1] / 2);
    state.channels = defaults();
    slider('t-slider', meta.shape[0] - 1, state.t, (v) => {
      state.t = v;
    });
    slider('z-slider', meta.shape[1] - 1, state.z, (v) => {
      state.z = v;
    });
    const projection = $('projection');
    projection.disabled = meta.shape[1] === 1;
    projection.addEventListener('change', () => {
      state.projection = projection.value;
      $('z-slider').disabled = !!state.projection || meta.shape[1] === 1;
      changed();
    });
    $('grey').addEventListener('change', (e) => {
      state.grey = e.target.checked;
      changed();
    });
    $('reset').addEventListener('click', () => {
      state.channels = defaults();
      state.channels.forEach((_, i) => syncChannel(i));
      changed();
    });
    $('fit').addEventListener('click', fit);
    buildChannels();
    showMetadata();
    wireCatalogue();
    showCatalogue();
    body.dataset.ready = 'true';
    fitted = true;
    fit();
  }

  start();
})();
