// pentascope pages: what they share. The API key (taken once from `?key=`
// or typed into the key box) lives in this tab's sessionStorage and goes
// with every call as `Authorization: Bearer`; images are fetched the same
// way and shown through blob: URLs, since <img> cannot send the header.
// Under a signed link (`/s/<token>/view/<id>`) every call goes under the
// same prefix and needs no key.
'use strict';

const Pentascope = (() => {
  const STORE = 'pentascope.key';

  // the key of `?key=`, kept and taken off the address (and so off the
  // history and out of screenshots)
  const here = new URL(window.location.href);
  if (here.searchParams.has('key')) {
    const given = here.searchParams.get('key').trim();
    if (given) sessionStorage.setItem(STORE, given);
    here.searchParams.delete('key');
    history.replaceState(null, '', here.pathname + here.search + here.hash);
  }

  // where the API is: the page's path without its own route, so that the
  // pages work at the root, behind a path prefix and under a signed link
  const page = document.body.dataset.page;
  const path = window.location.pathname;
  let base = path;
  if (page === 'view') base = path.replace(/\/view\/[^/]*$/, '');
  else if (page === 'docs') base = path.replace(/\/docs$/, '');
  else base = path.replace(/\/$/, '');
  const link = /\/s\/[^/]+$/.test(base);

  function key() {
    return sessionStorage.getItem(STORE) || '';
  }

  function setKey(value) {
    if (value) sessionStorage.setItem(STORE, value);
    else sessionStorage.removeItem(STORE);
  }

  function headers(extra) {
    const h = Object.assign({}, extra || {});
    const k = key();
    if (k && !link) h.Authorization = 'Bearer ' + k;
    return h;
  }

  function url(route) {
    return base + route;
  }

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function failure(resp) {
    let message = resp.status + ' ' + resp.statusText;
    try {
      const body = await resp.json();
      if (body && body.error) message = body.error;
    } catch (_) {
      // not JSON: keep the status line
    }
    return new ApiError(resp.status, message);
  }

  // GET (or any method) `route` under the API base; the parsed JSON
  async function json(route, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = headers(opts.headers);
    const resp = await fetch(url(route), opts);
    if (!resp.ok) throw await failure(resp);
    return resp.json();
  }

  // an image as a Blob (for blob: URLs and createImageBitmap)
  async function blob(route, signal) {
    const resp = await fetch(url(route), { headers: headers(), signal });
    if (!resp.ok) throw await failure(resp);
    return resp.blob();
  }

  // the small key field in the page header: shows whether a key is kept,
  // lets the user type one or forget it; `onChange` reloads the data
  function keyBox(onChange) {
    const box = document.getElementById('key-box');
    if (!box) return;
    box.textContent = '';
    if (link) {
      box.textContent = 'opened with a signed link';
      return;
    }
    const input = document.createElement('input');
    input.type = 'password';
    input.id = 'key-input';
    input.placeholder = key() ? 'key kept for this tab' : 'API key (if required)';
    input.autocomplete = 'off';
    input.size = 22;
    const save = document.createElement('button');
    save.type = 'button';
    save.id = 'key-save';
    save.textContent = 'Use key';
    const forget = document.createElement('button');
    forget.type = 'button';
    forget.textContent = 'Forget';
    forget.hidden = !key();
    save.addEventListener('click', () => {
      setKey(input.value.trim());
      input.value = '';
      keyBox(onChange);
      if (onChange) onChange();
    });
    input.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') save.click();
    });
    forget.addEventListener('click', () => {
      setKey('');
      keyBox(onChange);
      if (onChange) onChange();
    });
    box.append(input, save, forget);
  }

  // a message for an API failure, with a hint when a key is needed
  function explain(error) {
    if (error && (error.status === 401 || error.status === 403) && !link) {
      return error.message + ' (type an API key at the top right, or open this page as ?key=<key>)';
    }
    return error && error.message ? error.message : String(error);
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') node.className = v;
      else if (k === 'text') node.textContent = v;
      else node.setAttribute(k, v === true ? '' : v);
    }
    for (const child of children) {
      if (child === undefined || child === null || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function bytes(n) {
    if (n === null || n === undefined) return '';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) {
      n /= 1024;
      i++;
    }
    return (i ? n.toFixed(1) : n) + ' ' + units[i];
  }

  return { base, link, key, setKey, headers, url, json, blob, keyBox, explain, el, bytes, ApiError };
})();
