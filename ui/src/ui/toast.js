// Toasts (bottom right) and a small confirm dialog. No window.confirm: not every webview has it.
import { h, icon } from './dom.js';

let host = null;

function ensureHost() {
  if (!host) {
    host = document.getElementById('toasts') || document.body.appendChild(h('div', { id: 'toasts' }));
    host.setAttribute('aria-live', 'polite');
  }
  return host;
}

/**
 * toast('Saved', { kind: 'success'|'error'|'info', action: { label: 'Undo', run: fn }, timeout })
 * Returns { close }.
 */
export function toast(message, { kind = 'info', action = null, timeout } = {}) {
  const el = h('div', { class: ['toast', `toast-${kind}`], role: kind === 'error' ? 'alert' : 'status' });
  const close = () => {
    if (!el.isConnected) return;
    el.classList.add('toast-leaving');
    setTimeout(() => el.remove(), 180);
  };
  el.append(h('div', { class: 'toast-msg' }, message));
  if (action) {
    el.append(
      h(
        'button',
        {
          class: 'btn btn-small toast-action',
          onclick: async () => {
            close();
            try {
              await action.run();
            } catch (e) {
              toast(e.message || String(e), { kind: 'error' });
            }
          },
        },
        action.icon ? icon(action.icon, 14) : null,
        action.label,
      ),
    );
  }
  el.append(h('button', { class: 'toast-close', title: 'Dismiss', 'aria-label': 'Dismiss', onclick: close }, icon('x', 14)));
  const box = ensureHost();
  box.append(el);
  while (box.children.length > 5) box.firstElementChild.remove();
  const ms = timeout ?? (kind === 'error' ? 9000 : action ? 8000 : 4000);
  let timer = setTimeout(close, ms);
  el.addEventListener('mouseenter', () => clearTimeout(timer));
  el.addEventListener('mouseleave', () => {
    timer = setTimeout(close, 2500);
  });
  return { close };
}

export function toastError(e, prefix = '') {
  const msg = e && e.message ? e.message : String(e);
  console.error(prefix, e);
  return toast(prefix ? `${prefix}: ${msg}` : msg, { kind: 'error' });
}

/** A modal confirm; resolves true/false. */
export function confirmDialog({ title, body = '', confirmLabel = 'OK', cancelLabel = 'Cancel', danger = false }) {
  return new Promise((resolve) => {
    const prevFocus = document.activeElement;
    const done = (v) => {
      document.removeEventListener('keydown', onKey, true);
      overlay.remove();
      if (prevFocus && prevFocus.focus) prevFocus.focus();
      resolve(v);
    };
    const onKey = (e) => {
      if (e.key === 'Escape') {
        e.preventDefault();
        e.stopPropagation();
        done(false);
      } else if (e.key === 'Enter') {
        e.preventDefault();
        e.stopPropagation();
        done(true);
      } else {
        e.stopPropagation();
      }
    };
    const ok = h('button', { class: ['btn', danger ? 'btn-danger' : 'btn-primary'], onclick: () => done(true) }, confirmLabel);
    const overlay = h(
      'div',
      { class: 'modal-overlay', onclick: (e) => e.target === overlay && done(false) },
      h(
        'div',
        { class: 'modal', role: 'dialog', 'aria-modal': 'true' },
        h('h2', { class: 'modal-title' }, title),
        body ? h('p', { class: 'modal-body' }, body) : null,
        h('div', { class: 'modal-actions' }, h('button', { class: 'btn', onclick: () => done(false) }, cancelLabel), ok),
      ),
    );
    document.body.append(overlay);
    document.addEventListener('keydown', onKey, true);
    ok.focus();
  });
}
