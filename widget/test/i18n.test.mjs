import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chooseLanguage, dirOf, LANGUAGES, STRINGS, translator } from '../src/i18n.js';

describe('i18n', () => {
  test('the setting forces a language, else the browser chooses, else English', () => {
    assert.equal(chooseLanguage('de', ['fr-FR', 'en']), 'de');
    assert.equal(chooseLanguage('auto', ['it-IT', 'fr-CA', 'es']), 'fr');
    assert.equal(chooseLanguage('auto', ['ja', 'it']), 'en');
    assert.equal(chooseLanguage(undefined, []), 'en');
  });

  test('every language has every English string, with the same placeholders', () => {
    const placeholders = (text) => [...text.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const lang of LANGUAGES) {
      for (const [key, text] of Object.entries(STRINGS.en)) {
        assert.equal(typeof STRINGS[lang][key], 'string', `${lang}.${key}`);
        assert.deepEqual(placeholders(STRINGS[lang][key]), placeholders(text), `${lang}.${key}`);
      }
    }
  });

  test('settings texts replace the language’s own and placeholders are filled', () => {
    const t = translator('es', { title: 'Acme', texts: { waiting: 'Un momento…', busy: null } });
    assert.equal(t('title'), 'Acme');
    assert.equal(t('waiting'), 'Un momento…');
    assert.equal(t('busy'), STRINGS.es.busy);
    assert.equal(t('endedByAgent', { agent: 'alice' }), 'alice ha finalizado el chat');
    assert.equal(t.lang, 'es');
    assert.equal(t.dir, 'ltr');
  });

  test('dir follows the language', () => {
    assert.equal(dirOf('ar-EG'), 'rtl');
    assert.equal(dirOf('he'), 'rtl');
    assert.equal(dirOf('de'), 'ltr');
  });
});
