// Attachments in the page: choosing files (the picker, drag-and-drop onto
// the chat, paste into the composer), checking them against the bridge's
// `attachments` settings (widget.json) before uploading, the upload itself
// (`POST attachments?name=…` with the resume token, over XMLHttpRequest
// for its progress events), and a file's bytes for a thumbnail or a
// download (`GET attachments/{id}`, as a Blob: the token never goes in a
// URL, so an <img> cannot load it by itself).
//
// The bridge checks everything again (type, size, the bytes' own type):
// these checks only spare the customer a useless upload.

/** Human size: `12 KB`, `3.4 MB`. */
export function formatSize(bytes) {
  if (!Number.isFinite(bytes) || bytes < 0) return '';
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** Whether `file` may be sent: `{ok: true}` or `{error: key, vars}` for i18n. */
export function checkFile(file, settings) {
  const types = settings?.types ?? [];
  const max = settings?.maxBytes ?? 0;
  const type = String(file?.type ?? '').toLowerCase();
  if (!types.includes(type)) return { error: 'fileTypeRefused', vars: { name: file?.name ?? '' } };
  if (max && file.size > max) return { error: 'fileTooLarge', vars: { name: file.name, max: formatSize(max) } };
  if (!file.size) return { error: 'fileEmpty', vars: { name: file.name } };
  return { ok: true };
}

/** Whether a file of `type` gets a thumbnail. */
export function isImage(type) {
  return ['image/png', 'image/jpeg', 'image/gif', 'image/webp'].includes(type);
}

/**
 * Uploads `file` with `token`; resolves `{ok: attachment}` or `{error: {code, message}}`.
 * `onProgress(fraction)` follows the upload.
 */
export function upload(file, token, onProgress = () => {}, XHR = globalThis.XMLHttpRequest) {
  return new Promise((resolve) => {
    const xhr = new XHR();
    xhr.open('POST', `attachments?name=${encodeURIComponent(file.name || 'file')}`);
    xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.setRequestHeader('Content-Type', file.type || 'application/octet-stream');
    xhr.upload?.addEventListener('progress', (event) => {
      if (event.lengthComputable && event.total) onProgress(event.loaded / event.total);
    });
    xhr.addEventListener('load', () => {
      let body = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = null;
      }
      if (xhr.status === 201 && body?.attachment?.id) resolve({ ok: body.attachment });
      else resolve({ error: body?.error ?? { code: 'internal', message: `HTTP ${xhr.status}` } });
    });
    xhr.addEventListener('error', () => resolve({ error: { code: 'network', message: 'no connection' } }));
    xhr.send(file);
  });
}

/** A file's bytes as a Blob (null when refused). */
export async function fetchFile(id, token, fetchImpl = globalThis.fetch?.bind(globalThis)) {
  if (!fetchImpl) return null;
  try {
    const response = await fetchImpl(`attachments/${encodeURIComponent(id)}`, {
      headers: { Authorization: `Bearer ${token}` },
      cache: 'no-store',
    });
    return response.ok ? await response.blob() : null;
  } catch {
    return null;
  }
}

/**
 * Wires the picker, drop and paste to `onFiles(files)`.
 * @param {{button: HTMLElement, input: HTMLInputElement, dropZone: HTMLElement, pasteTarget: HTMLElement}} nodes
 */
export function bindFilePicking({ button, input, dropZone, pasteTarget }, onFiles) {
  button.addEventListener('click', () => input.click());
  input.addEventListener('change', () => {
    const files = [...(input.files ?? [])];
    input.value = '';
    if (files.length) onFiles(files);
  });
  dropZone.addEventListener('dragover', (event) => {
    if ([...(event.dataTransfer?.types ?? [])].includes('Files')) {
      event.preventDefault();
      dropZone.dataset.dropping = 'true';
    }
  });
  dropZone.addEventListener('dragleave', () => delete dropZone.dataset.dropping);
  dropZone.addEventListener('drop', (event) => {
    delete dropZone.dataset.dropping;
    const files = [...(event.dataTransfer?.files ?? [])];
    if (!files.length) return;
    event.preventDefault();
    onFiles(files);
  });
  pasteTarget.addEventListener('paste', (event) => {
    const files = [...(event.clipboardData?.files ?? [])];
    if (!files.length) return;
    event.preventDefault();
    onFiles(files);
  });
}
