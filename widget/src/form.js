// The pre-engagement form's fields, built from `/widget.json` → `form`
// (the name first, then e-mail, question and topic as configured). Each
// field has a visible label, `required` / "(optional)", an error line tied
// to it with `aria-describedby` and `aria-invalid`, and test ids
// `<field>-input` and `<field>-error`. The bridge checks every field again
// and names the wrong ones (`register`'s `fields`); those codes are shown
// here in the page's language.

const INPUT_TYPES = { text: 'text', email: 'email' };
const AUTOCOMPLETE = { name: 'name', email: 'email' };
const LABELS = { name: 'nameLabel', email: 'emailLabel', question: 'questionLabel', topic: 'topicLabel' };
const ERRORS = {
  required: 'fieldRequired',
  too_long: 'fieldTooLong',
  invalid_email: 'fieldEmail',
  invalid_choice: 'fieldChoice',
  invalid: 'fieldInvalid',
};

/** The fields a form without settings has: a required name. */
export const DEFAULT_FIELDS = Object.freeze([{ name: 'name', type: 'text', required: true, maxChars: 100 }]);

export class PreEngagementForm {
  /**
   * @param {Document} doc
   * @param {HTMLElement} container where the fields go
   * @param {Array<{name: string, type: string, required: boolean, maxChars?: number, choices?: string[]}>} fields
   * @param {(key: string, vars?: object) => string} t
   */
  constructor(doc, container, fields, t) {
    this.t = t;
    this.fields = new Map();
    const list = Array.isArray(fields) && fields.some((f) => f?.name === 'name') ? fields : DEFAULT_FIELDS;
    for (const spec of list) {
      if (!spec || !LABELS[spec.name]) continue;
      this.fields.set(spec.name, this.#build(doc, container, spec));
    }
  }

  #build(doc, container, spec) {
    const id = `${spec.name}-input`;
    const wrap = doc.createElement('div');
    wrap.className = 'form-field';
    const label = doc.createElement('label');
    label.htmlFor = id;
    label.textContent = this.t(LABELS[spec.name]);
    if (!spec.required) {
      const optional = doc.createElement('span');
      optional.className = 'optional';
      optional.textContent = ` ${this.t('optional')}`;
      label.append(optional);
    }
    let input;
    if (spec.type === 'select') {
      input = doc.createElement('select');
      const none = doc.createElement('option');
      none.value = '';
      none.textContent = this.t('topicChoose');
      input.append(none);
      for (const choice of spec.choices ?? []) {
        const option = doc.createElement('option');
        option.value = choice;
        option.textContent = choice;
        input.append(option);
      }
    } else if (spec.type === 'textarea') {
      input = doc.createElement('textarea');
      input.rows = 3;
      input.dir = 'auto';
    } else {
      input = doc.createElement('input');
      input.type = INPUT_TYPES[spec.type] ?? 'text';
      input.dir = 'auto';
      if (AUTOCOMPLETE[spec.name]) input.autocomplete = AUTOCOMPLETE[spec.name];
    }
    input.id = id;
    input.name = spec.name;
    input.dataset.testid = id;
    if (spec.maxChars) input.setAttribute('maxlength', String(spec.maxChars));
    if (spec.required) {
      input.required = true;
      input.setAttribute('aria-required', 'true');
    }
    const error = doc.createElement('p');
    error.id = `${spec.name}-error`;
    error.className = 'form-error field-error';
    error.dataset.testid = `${spec.name}-field-error`;
    error.hidden = true;
    input.setAttribute('aria-describedby', error.id);
    wrap.append(label, input, error);
    container.append(wrap);
    return { spec, input, error };
  }

  /** `{name, email?, question?, topic?}` as typed. */
  values() {
    const values = {};
    for (const [name, { input }] of this.fields) values[name] = input.value;
    return values;
  }

  /** Shows each field's error (`{field: code}`), clears the others. */
  showErrors(errors = {}) {
    for (const [name, { spec, input, error }] of this.fields) {
      const code = errors[name];
      error.hidden = !code;
      error.textContent = code ? this.t(ERRORS[code] ?? 'fieldInvalid', { max: spec.maxChars ?? '' }) : '';
      if (code) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    }
  }

  /** Moves focus to the first field with an error; true when there was one. */
  focusFirstError(errors = {}) {
    for (const [name, { input }] of this.fields) {
      if (errors[name]) {
        input.focus();
        return true;
      }
    }
    return false;
  }

  setDisabled(disabled) {
    for (const { input } of this.fields.values()) input.disabled = disabled;
  }

  clear() {
    for (const { input } of this.fields.values()) input.value = '';
  }

  focus() {
    this.fields.get('name')?.input.focus();
  }
}
