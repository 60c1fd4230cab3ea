// `/docs`: the API reference, rendered from `/openapi.json` in the
// browser: every path and method with its summary, description,
// parameters, request body and responses, then the schemas.
'use strict';

(() => {
  const P = Pentascope;
  const el = P.el;
  const METHODS = ['get', 'head', 'post', 'put', 'patch', 'delete', 'options'];

  // the small Markdown the descriptions use: paragraphs, `- ` lists,
  // `code`, **bold**, *emphasis* and [links](url), escaped first
  function escape(text) {
    return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
  }

  function inline(text) {
    const codes = [];
    let s = escape(text).replace(/`([^`]+)`/g, (_, code) => {
      codes.push(code);
      return '\u0000' + (codes.length - 1) + '\u0000';
    });
    s = s
      .replace(/\*\*([^*]+)\*\*/g, '<strong>$1</strong>')
      .replace(/(^|[^*])\*([^*\s][^*]*)\*/g, '$1<em>$2</em>')
      .replace(/\[([^\]]+)\]\(((?:https?:\/\/|\/|#)[^)\s]*)\)/g, '<a href="$2">$1</a>');
    return s.replace(/\u0000(\d+)\u0000/g, (_, i) => '<code>' + codes[Number(i)] + '</code>');
  }

  function markdown(text) {
    const box = el('div', { class: 'md' });
    if (!text) return box;
    let html = '';
    for (const block of String(text).split(/\n\s*\n/)) {
      const lines = block.split('\n');
      if (lines.every((l) => /^\s*[-*] /.test(l) || /^\s{2,}\S/.test(l))) {
        const items = [];
        for (const l of lines) {
          if (/^\s*[-*] /.test(l)) items.push(l.replace(/^\s*[-*] /, ''));
          else items[items.length - 1] += ' ' + l.trim();
        }
        html += '<ul>' + items.map((i) => '<li>' + inline(i) + '</li>').join('') + '</ul>';
      } else if (/^#{1,4} /.test(block)) {
        html += '<h4>' + inline(block.replace(/^#{1,4} /, '')) + '</h4>';
      } else {
        html += '<p>' + inline(block) + '</p>';
      }
    }
    // every piece of text went through escape() first
    box.innerHTML = html;
    return box;
  }

  function refName(ref) {
    return ref.split('/').pop();
  }

  function resolve(doc, node, kind) {
    if (node && node.$ref) return doc.components[kind][refName(node.$ref)] || {};
    return node || {};
  }

  // a short type for a schema: `string`, `integer (0–255)`, `Image`, `array of number`
  function typeOf(schema) {
    if (!schema) return '';
    if (schema.$ref) {
      const name = refName(schema.$ref);
      return el('a', { href: '#schema-' + name, text: name });
    }
    if (schema.type === 'array') {
      const inner = typeOf(schema.items);
      return el('span', {}, 'array of ', inner || 'any');
    }
    if (schema.oneOf || schema.anyOf) {
      const parts = (schema.oneOf || schema.anyOf).map(typeOf);
      const span = el('span');
      parts.forEach((p, i) => span.append(i ? ' or ' : '', p));
      return span;
    }
    let t = Array.isArray(schema.type) ? schema.type.join(' or ') : schema.type || 'any';
    if (schema.enum) t += ': ' + schema.enum.map((v) => JSON.stringify(v)).join(', ');
    if (schema.format) t += ' (' + schema.format + ')';
    if (schema.minimum !== undefined || schema.maximum !== undefined) {
      t += ' [' + (schema.minimum ?? '') + '…' + (schema.maximum ?? '') + ']';
    }
    if (schema.default !== undefined) t += ', default ' + JSON.stringify(schema.default);
    return t;
  }

  function contentList(content) {
    const types = Object.entries(content || {});
    if (!types.length) return null;
    const span = el('span', { class: 'content' });
    types.forEach(([mime, media], i) => {
      span.append(i ? '; ' : '', el('code', { text: mime }));
      const t = media.schema ? typeOf(media.schema) : '';
      if (t && !(typeof t === 'string' && (t === 'string' || t.startsWith('string (')))) span.append(' ', t);
    });
    return span;
  }

  function parametersTable(doc, params) {
    const table = el(
      'table',
      { class: 'params' },
      el('thead', {}, el('tr', {}, el('th', { text: 'parameter' }), el('th', { text: 'in' }), el('th', { text: 'type' }), el('th', { text: 'description' }))),
    );
    const tbody = el('tbody');
    for (const raw of params) {
      const p = resolve(doc, raw, 'parameters');
      tbody.append(
        el(
          'tr',
          {},
          el('td', {}, el('code', { text: p.name }), p.required ? el('span', { class: 'required', text: ' required' }) : null),
          el('td', { text: p.in }),
          el('td', {}, typeOf(p.schema)),
          el('td', {}, markdown(p.description)),
        ),
      );
    }
    table.append(tbody);
    return table;
  }

  function responsesTable(doc, responses) {
    const table = el('table', { class: 'responses' });
    const tbody = el('tbody');
    for (const [status, raw] of Object.entries(responses || {})) {
      const r = resolve(doc, raw, 'responses');
      tbody.append(
        el(
          'tr',
          {},
          el('td', {}, el('code', { class: 'http s' + status[0], text: status })),
          el('td', {}, markdown(r.description), contentList(r.content)),
        ),
      );
    }
    table.append(tbody);
    return table;
  }

  function operation(doc, path, method, op, shared) {
    const id = 'op-' + method + '-' + path.replace(/[^a-zA-Z0-9]+/g, '-');
    const publicRoute = Array.isArray(op.security) && op.security.length === 0;
    const section = el(
      'section',
      { class: 'op', id, 'data-path': path, 'data-method': method },
      el(
        'h3',
        {},
        el('span', { class: 'method m-' + method, text: method.toUpperCase() }),
        ' ',
        el('code', { class: 'path', text: path }),
        ' ',
        el('span', { class: 'summary', text: op.summary || '' }),
        publicRoute ? el('span', { class: 'badge', text: 'public' }) : null,
      ),
      markdown(op.description),
    );
    const params = (shared || []).concat(op.parameters || []);
    if (params.length) section.append(el('h4', { text: 'Parameters' }), parametersTable(doc, params));
    if (op.requestBody) {
      const rb = resolve(doc, op.requestBody, 'requestBodies');
      section.append(
        el('h4', { text: 'Request body' + (rb.required ? ' (required)' : '') }),
        markdown(rb.description),
        el('p', {}, contentList(rb.content)),
      );
    }
    section.append(el('h4', { text: 'Responses' }), responsesTable(doc, op.responses));
    return section;
  }

  function schemaSection(name, schema) {
    const section = el('section', { class: 'schema', id: 'schema-' + name }, el('h3', {}, el('code', { text: name })));
    section.append(markdown(schema.description));
    const props = Object.entries(schema.properties || {});
    for (const part of schema.allOf || []) {
      if (part.$ref) section.append(el('p', {}, 'all of ', typeOf(part)));
      props.push(...Object.entries(part.properties || {}));
    }
    if (props.length) {
      const required = new Set(schema.required || []);
      const tbody = el('tbody');
      for (const [prop, s] of props) {
        tbody.append(
          el(
            'tr',
            {},
            el('td', {}, el('code', { text: prop }), required.has(prop) ? el('span', { class: 'required', text: ' required' }) : null),
            el('td', {}, typeOf(s)),
            el('td', {}, markdown(s.description)),
          ),
        );
      }
      section.append(el('table', { class: 'params' }, tbody));
    } else if (schema.type) {
      section.append(el('p', {}, typeOf(schema)));
    }
    return section;
  }

  async function render() {
    const status = document.getElementById('docs-status');
    let doc;
    try {
      doc = await P.json('/openapi.json');
    } catch (e) {
      status.textContent = 'cannot load the API description: ' + P.explain(e);
      return;
    }
    const intro = document.getElementById('docs-intro');
    intro.append(
      el('h1', {}, doc.info.title + ' ', el('span', { class: 'muted', text: doc.info.version })),
      el('p', { class: 'lead', text: doc.info.summary || '' }),
      markdown(doc.info.description),
    );
    // operations grouped by their first tag, in the document's tag order
    const groups = new Map((doc.tags || []).map((t) => [t.name, { tag: t, ops: [] }]));
    let count = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of METHODS) {
        const op = item[method];
        if (!op) continue;
        const tag = (op.tags && op.tags[0]) || 'other';
        if (!groups.has(tag)) groups.set(tag, { tag: { name: tag }, ops: [] });
        groups.get(tag).ops.push([path, method, op, item.parameters]);
        count++;
      }
    }
    const toc = document.getElementById('toc');
    const routes = document.getElementById('routes');
    toc.append(el('h2', { text: count + ' routes' }));
    for (const { tag, ops } of groups.values()) {
      if (!ops.length) continue;
      const list = el('ul');
      const group = el('section', { class: 'group', id: 'tag-' + tag.name }, el('h2', { text: tag.name }), markdown(tag.description));
      for (const [path, method, op, shared] of ops) {
        const section = operation(doc, path, method, op, shared);
        group.append(section);
        list.append(
          el(
            'li',
            {},
            el('a', { href: '#' + section.id }, el('span', { class: 'method m-' + method, text: method.toUpperCase() }), ' ', el('code', { text: path })),
            ' ',
            op.summary || '',
          ),
        );
      }
      toc.append(el('h3', {}, el('a', { href: '#tag-' + tag.name, text: tag.name })), list);
      routes.append(group);
    }
    const schemas = document.getElementById('schemas');
    const entries = Object.entries((doc.components && doc.components.schemas) || {});
    if (entries.length) {
      schemas.append(el('h2', { text: 'Schemas' }));
      for (const [name, schema] of entries) schemas.append(schemaSection(name, schema));
    }
    routes.dataset.count = String(count);
    // the address's #fragment, now that its target exists
    if (window.location.hash) {
      const target = document.getElementById(window.location.hash.slice(1));
      if (target) target.scrollIntoView();
    }
  }

  render();
})();
