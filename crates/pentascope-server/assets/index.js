// `/`: the images as thumbnails linking to their viewers, and an upload
// form whose progress bar follows the XMLHttpRequest upload.
'use strict';

(() => {
  const P = Pentascope;
  const grid = document.getElementById('images');
  const count = document.getElementById('image-count');
  const listStatus = document.getElementById('list-status');
  const form = document.getElementById('upload-form');
  const fileInput = document.getElementById('upload-file');
  const axesInput = document.getElementById('upload-axes');
  const button = document.getElementById('upload-button');
  const progress = document.getElementById('upload-progress');
  const uploadStatus = document.getElementById('upload-status');
  // thumbnails' blob: URLs, released when the list is redrawn
  let urls = [];
  // upload progress events as the page saw them (read by the browser test)
  window.pentascopeUploads = [];

  function shapeText(image) {
    return ['T', 'Z', 'C', 'Y', 'X']
      .map((axis, i) => axis + ' ' + image.shape[i])
      .join(' · ');
  }

  function card(image) {
    const href = 'view/' + encodeURIComponent(image.image_id);
    const img = P.el('img', { alt: image.image_id, class: 'thumb loading', width: 256, height: 256 });
    const name = image.original_filename || (image.kind === 'upload' ? '' : image.kind);
    const node = P.el(
      'a',
      { class: 'card', href, 'data-image-id': image.image_id },
      P.el('div', { class: 'thumb-box' }, img),
      P.el('div', { class: 'card-title', text: image.image_id }),
      P.el('div', { class: 'card-sub', text: name }),
      P.el('div', { class: 'card-sub muted', text: shapeText(image) + ' · ' + image.dtype }),
    );
    P.blob('/thumbnail?image_id=' + encodeURIComponent(image.image_id) + '&size=256')
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

  async function refresh() {
    listStatus.textContent = 'loading…';
    try {
      const list = await P.json('/images');
      urls.forEach((u) => URL.revokeObjectURL(u));
      urls = [];
      grid.textContent = '';
      list.images.forEach((image) => grid.append(card(image)));
      count.textContent = '(' + list.count + ')';
      listStatus.textContent = list.count ? '' : 'No images yet: upload a TIFF above.';
      grid.dataset.count = String(list.count);
    } catch (e) {
      grid.textContent = '';
      count.textContent = '';
      listStatus.textContent = P.explain(e);
      delete grid.dataset.count;
    }
  }

  function upload(event) {
    event.preventDefault();
    const file = fileInput.files[0];
    if (!file) return;
    const data = new FormData();
    const axes = axesInput.value.trim();
    if (axes) data.append('axes', axes);
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
        refresh();
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
  P.keyBox(refresh);
  refresh();
})();
