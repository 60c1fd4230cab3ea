// `/`: the catalogue. A search box, the datasets and tags the user may
// see, and one page of thumbnails at a time (only that page is asked for,
// with the server's keyset cursors for next and previous); an upload form
// whose progress bar follows the XMLHttpRequest upload, or for files over
// the form's data-resumable-threshold, tus-js-client's resumable upload to
// /uploads (resumed after a dropped connection, and after a reload once
// the same file is chosen again).
'use strict';

(() => {
  const P = Pentascope;
  const PAGE = 48;
  const grid = document.getElementById('images');
  const count = document.getElementById('image-count');
  const listStatus = document.getElementById('list-status');
  const form = document.getElementById('upload-form');
  const fileInput = document.getElementById('upload-file');
  const axesInput = document.getElementById('upload-axes');
  const nameInput = document.getElementById('upload-name');
  const tagsInput = document.getElementById('upload-tags');
  const datasetInput = document.getElementById('upload-dataset');
  const button = document.getElementById('upload-button');
  const progress = document.getElementById('upload-progress');
  const uploadStatus = document.getElementById('upload-status');
  const search = document.getElementById('search');
  const sort = document.getElementById('sort');
  const filtersBox = document.getElementById('filters');
  const datasetList = document.getElementById('datasets');
  const tagBox = document.getElementById('tags');
  const prev = document.getElementById('prev-page');
  const next = document.getElementById('next-page');
  const pageNumber = document.getElementById('page-number');
  // thumbnails' blob: URLs, released when the list is redrawn
  let urls = [];
  // upload progress events as the page saw them (read by the browser test)
  window.pentascopeUploads = [];
  // the query: words, a dataset, tags; the cursors of the pages seen so far
  const query = { q: '', dataset: null, datasetName: '', tags: [] };
  let cursors = [null];
  let page = 0;
  let nextCursor = null;
  // a newer listing supersedes one still loading
  let generation = 0;
  // the shown page's thumbnail requests, cancelled when another page is shown
  let thumbnails = new AbortController();

  function shapeText(image) {
    return ['T', 'Z', 'C', 'Y', 'X']
      .map((axis, i) => axis + ' ' + image.shape[i])
      .join(' · ');
  }

  function card(image) {
    const href = 'view/' + encodeURIComponent(image.image_id);
    const img = P.el('img', { alt: image.image_id, class: 'thumb loading', width: 256, height: 256 });
    const tags = P.el('div', { class: 'card-tags' });
    (image.tags || []).slice(0, 6).forEach((t) => tags.append(P.el('span', { text: t })));
    const node = P.el(
      'a',
      { class: 'card', href, 'data-image-id': image.image_id, title: image.description || '' },
      P.el('div', { class: 'thumb-box' }, img),
      P.el('div', { class: 'card-title', text: image.name || image.image_id }),
      P.el('div', { class: 'card-sub', text: image.image_id + (image.kind === 'upload' ? '' : ' · ' + image.kind) }),
      P.el('div', { class: 'card-sub muted', text: shapeText(image) + ' · ' + image.dtype }),
      tags,
    );
    P.blob('/thumbnail?image_id=' + encodeURIComponent(image.image_id) + '&size=256', thumbnails.signal)
      .then((b) => {
        const u = URL.createObjectURL(b);
        urls.push(u);
        img.addEventListener('load', () => {
          img.classList.remove('loading');
          img.removeAttribute('width');
          img.removeAttribute('height');
          img.dataset.loaded = 'true';
        }, { once: true });
        img.src = u;
      })
      .catch((e) => {
        img.classList.remove('loading');
        img.replaceWith(P.el('div', { class: 'thumb-error', text: P.explain(e) }));
      });
    return node;
  }

  function listRoute(cursor) {
    const params = new URLSearchParams();
    if (query.q.trim()) params.set('q', query.q.trim());
    if (query.dataset) params.set('dataset', query.dataset);
    query.tags.forEach((t) => params.append('tag', t));
    params.set('sort', sort.value);
    params.set('limit', String(PAGE));
    if (cursor) params.set('cursor', cursor);
    return '/images?' + params.toString();
  }

  function showFilters() {
    filtersBox.textContent = '';
    const chip = (text, remove) => {
      const b = P.el('button', { type: 'button', class: 'chip active', title: 'remove this filter', text: text + ' ×' });
      b.addEventListener('click', remove);
      filtersBox.append(b);
    };
    if (query.dataset) chip('dataset: ' + query.datasetName, () => { query.dataset = null; restart(); });
    query.tags.forEach((t) => chip('tag: ' + t, () => {
      query.tags = query.tags.filter((x) => x !== t);
      restart();
    }));
  }

  async function refresh() {
    const mine = ++generation;
    listStatus.textContent = 'loading…';
    grid.dataset.state = 'loading';
    showFilters();
    try {
      const list = await P.json(listRoute(cursors[page]));
      if (mine !== generation) return;
      thumbnails.abort();
      thumbnails = new AbortController();
      urls.forEach((u) => URL.revokeObjectURL(u));
      urls = [];
      grid.textContent = '';
      list.images.forEach((image) => grid.append(card(image)));
      count.textContent = '(' + list.count + (list.count === 1 ? ' match' : ' matches') + ')';
      const searching = query.q.trim() || query.dataset || query.tags.length;
      listStatus.textContent = list.count
        ? ''
        : searching ? 'Nothing matches.' : 'No images yet: upload a TIFF above.';
      nextCursor = list.next_cursor;
      prev.disabled = page === 0;
      next.disabled = !nextCursor;
      const pages = Math.max(1, Math.ceil(list.count / PAGE));
      pageNumber.textContent = 'page ' + (page + 1) + ' of ' + pages;
      grid.dataset.count = String(list.images.length);
      grid.dataset.total = String(list.count);
      grid.dataset.state = 'done';
    } catch (e) {
      if (mine !== generation) return;
      grid.textContent = '';
      count.textContent = '';
      listStatus.textContent = P.explain(e);
      delete grid.dataset.count;
      grid.dataset.state = 'failed';
    }
  }

  // a new query starts again at its first page
  function restart() {
    cursors = [null];
    page = 0;
    refresh();
    facets();
  }

  async function facets() {
    try {
      const [datasets, tags] = await Promise.all([
        P.json('/datasets?limit=200&sort=name'),
        P.json('/tags?limit=60'),
      ]);
      datasetList.textContent = '';
      const names = document.getElementById('dataset-names');
      names.textContent = '';
      datasets.datasets.forEach((d) => {
        const li = P.el('li', { 'data-dataset-id': d.dataset_id, class: query.dataset === d.dataset_id ? 'active' : '' },
          P.el('span', { text: d.name }), P.el('span', { class: 'muted', text: String(d.image_count) }));
        li.addEventListener('click', () => {
          query.dataset = query.dataset === d.dataset_id ? null : d.dataset_id;
          query.datasetName = d.name;
          restart();
        });
        datasetList.append(li);
        names.append(P.el('option', { value: d.name }));
      });
      if (!datasets.datasets.length) datasetList.append(P.el('li', { class: 'muted', text: 'none yet' }));
      tagBox.textContent = '';
      tags.tags.forEach((t) => {
        const b = P.el('button', { type: 'button', class: 'chip' + (query.tags.includes(t.tag) ? ' active' : ''), 'data-tag': t.tag },
          t.tag, P.el('span', { class: 'n', text: String(t.images) }));
        b.addEventListener('click', () => {
          query.tags = query.tags.includes(t.tag) ? query.tags.filter((x) => x !== t.tag) : query.tags.concat([t.tag]);
          restart();
        });
        tagBox.append(b);
      });
      if (!tags.tags.length) tagBox.append(P.el('span', { class: 'muted', text: 'none yet' }));
    } catch (_) {
      // the listing says what failed (a key is needed, …)
    }
  }

  // the catalogue fields of the form, as tus Upload-Metadata
  function tusMetadata(file) {
    const meta = { filename: file.name };
    const axes = axesInput.value.trim();
    if (axes) meta.axes = axes;
    if (nameInput.value.trim()) meta.name = nameInput.value.trim();
    const tags = tagsInput.value.split(',').map((t) => t.trim()).filter(Boolean);
    if (tags.length) meta.tag = tags.join('\n');
    if (datasetInput.value.trim()) meta.dataset = datasetInput.value.trim();
    return meta;
  }

  function showProgress(file, sent, total) {
    window.pentascopeUploads.push({ loaded: sent, total });
    progress.value = (100 * sent) / total;
    uploadStatus.textContent =
      'sending ' + file.name + ': ' + P.bytes(sent) + ' of ' + P.bytes(total);
  }

  // unfinished resumable uploads this browser knows: shown with their
  // progress after a reload, resumed when the same file is chosen again
  async function showUnfinished() {
    if (!window.tus || !tus.isSupported) return;
    let stored = [];
    try {
      stored = await tus.defaultOptions.urlStorage.findAllUploads();
    } catch (_) {
      return;
    }
    for (const previous of stored) {
      try {
        const resp = await fetch(previous.uploadUrl, {
          method: 'HEAD',
          headers: P.headers({ 'Tus-Resumable': '1.0.0' }),
        });
        if (!resp.ok) {
          await tus.defaultOptions.urlStorage.removeUpload(previous.urlStorageKey);
          continue;
        }
        const sent = Number(resp.headers.get('Upload-Offset'));
        const total = Number(resp.headers.get('Upload-Length'));
        const name = (previous.metadata && previous.metadata.filename) || 'a file';
        progress.hidden = false;
        progress.value = (100 * sent) / total;
        uploadStatus.textContent =
          'unfinished upload of ' + name + ': ' + P.bytes(sent) + ' of ' + P.bytes(total) +
          ' sent; choose the file again to resume';
        form.dataset.state = 'unfinished';
        form.dataset.resumeOffset = String(sent);
        return;
      } catch (_) {
        // the server is not reachable: nothing to show
      }
    }
  }

  function uploadResumable(file, done) {
    const upload = new tus.Upload(file, {
      endpoint: P.url('/uploads'),
      headers: P.headers(),
      metadata: tusMetadata(file),
      retryDelays: [0, 1000, 3000, 5000, 10000, 20000],
      // bounded requests pass proxies with a body limit; 0: one request
      chunkSize: Number(form.dataset.resumableChunk) || Infinity,
      removeFingerprintOnSuccess: true,
      onProgress: (sent, total) => {
        showProgress(file, sent, total);
        if (sent === total) {
          uploadStatus.textContent = 'sent; pentascope is reading and storing ' + file.name + '…';
        }
      },
      onError: (error) => {
        const resp = error.originalResponse;
        let message = error.message;
        if (resp) {
          try {
            message = JSON.parse(resp.getBody()).error || message;
          } catch (_) {
            // not JSON
          }
        }
        const status = resp ? resp.getStatus() : 0;
        done('upload failed: ' + P.explain(new P.ApiError(status, message)), 'failed', null);
      },
      onSuccess: async ({ lastResponse }) => {
        let body = null;
        try {
          body = JSON.parse(lastResponse.getBody());
        } catch (_) {
          // a resumed upload that was complete answers with no body
        }
        if (!body || !body.image_id) {
          // the last answer was lost: the upload keeps it
          body = await P.json(upload.url.slice(upload.url.indexOf('/uploads/')));
        }
        done('uploaded ' + file.name + ' as ' + body.image_id, 'done', body.image_id);
      },
    });
    upload.findPreviousUploads().then((previous) => {
      if (previous.length) {
        upload.resumeFromPreviousUpload(previous[0]);
        form.dataset.resumed = 'true';
      }
      upload.start();
    });
  }

  function upload(event) {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) return;
    const threshold = Number(form.dataset.resumableThreshold);
    if (window.tus && tus.isSupported && file.size > threshold) {
      progress.hidden = false;
      progress.value = 0;
      button.disabled = true;
      uploadStatus.textContent = 'sending ' + file.name + ' (' + P.bytes(file.size) + ')…';
      form.dataset.state = 'sending';
      uploadResumable(file, (text, state, imageId) => {
        button.disabled = false;
        uploadStatus.textContent = text;
        form.dataset.state = state;
        if (imageId) {
          form.dataset.imageId = imageId;
          fileInput.value = '';
          nameInput.value = '';
          restart();
        }
      });
      return;
    }
    const data = new FormData();
    const axes = axesInput.value.trim();
    if (axes) data.append('axes', axes);
    // the catalogue fields go before the file, as the server requires
    if (nameInput.value.trim()) data.append('name', nameInput.value.trim());
    tagsInput.value.split(',').map((t) => t.trim()).filter(Boolean).forEach((t) => data.append('tag', t));
    if (datasetInput.value.trim()) data.append('dataset', datasetInput.value.trim());
    data.append('file', file, file.name);
    const xhr = new XMLHttpRequest();
    xhr.open('POST', P.url('/upload'));
    const headers = P.headers();
    for (const [k, v] of Object.entries(headers)) xhr.setRequestHeader(k, v);
    progress.hidden = false;
    progress.value = 0;
    button.disabled = true;
    uploadStatus.textContent = 'sending ' + file.name + ' (' + P.bytes(file.size) + ')…';
    form.dataset.state = 'sending';
    xhr.upload.addEventListener('progress', (e) => {
      window.pentascopeUploads.push({ loaded: e.loaded, total: e.total });
      if (e.lengthComputable) {
        progress.value = (100 * e.loaded) / e.total;
        uploadStatus.textContent =
          'sending ' + file.name + ': ' + P.bytes(e.loaded) + ' of ' + P.bytes(e.total);
      }
    });
    xhr.upload.addEventListener('load', () => {
      progress.value = 100;
      uploadStatus.textContent = 'sent; pentascope is reading and storing ' + file.name + '…';
    });
    const done = (text, state) => {
      button.disabled = false;
      uploadStatus.textContent = text;
      form.dataset.state = state;
    };
    xhr.addEventListener('load', () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch (_) {
        // not JSON
      }
      if (xhr.status === 200 && body && body.image_id) {
        done('uploaded ' + file.name + ' as ' + body.image_id, 'done');
        form.dataset.imageId = body.image_id;
        fileInput.value = '';
        nameInput.value = '';
        restart();
      } else {
        const message = body && body.error ? body.error : xhr.status + ' ' + xhr.statusText;
        done(
          'upload failed: ' + P.explain(new P.ApiError(xhr.status, message)),
          'failed',
        );
      }
    });
    xhr.addEventListener('error', () => done('upload failed: the connection broke', 'failed'));
    xhr.send(data);
  }

  form.addEventListener('submit', upload);
  showUnfinished();
  let typing = 0;
  search.addEventListener('input', () => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      query.q = search.value;
      restart();
    }, 200);
  });
  sort.addEventListener('change', restart);
  next.addEventListener('click', () => {
    if (!nextCursor) return;
    cursors[page + 1] = nextCursor;
    page += 1;
    refresh();
  });
  prev.addEventListener('click', () => {
    if (page === 0) return;
    page -= 1;
    refresh();
  });
  P.keyBox(restart);
  restart();
})();
