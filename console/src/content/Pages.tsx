// Pages (terms, privacy, about, ...): each is a list of versions, each
// version with a text per language. Publishing makes a new version (older
// ones stay readable); English is required, Nepali optional.
import { useEffect, useState } from 'preact/hooks';

import { api, ok } from '../api/client';
import type { Lang, PageOut, PageSummary, PageVersionOut } from '../api/types';
import { Dialog, ErrorBanner, Loading, Notice } from '../ui/components';
import { formatDateTime } from '../ui/format';
import { DataTable } from '../ui/table';

const LANGS = ['en', 'ne'] as const satisfies readonly Lang[];
const LEGAL = new Set(['terms', 'privacy']);

export function Pages() {
  const [pages, setPages] = useState<PageSummary[] | null>(null);
  const [slug, setSlug] = useState<string | null>(null);
  const [publishing, setPublishing] = useState<string | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    ok(api.GET('/api/content/pages', { params: { query: { lang: 'en' } } }))
      .then(setPages)
      .catch(setError);
  }, [generation]);
  return (
    <>
      <p>
        <button type="button" class="primary" onClick={() => setPublishing('')}>
          New page…
        </button>
      </p>
      {notice ? <Notice>{notice}</Notice> : null}
      <ErrorBanner error={error} />
      {pages === null ? (
        <Loading what="pages" />
      ) : (
        <DataTable
          caption="Pages"
          rows={pages}
          rowKey={(p) => p.slug}
          empty="No pages yet."
          columns={[
            {
              key: 'slug',
              label: 'Page',
              sort: (p) => p.slug,
              render: (p) => (
                <button type="button" class="link" onClick={() => setSlug(p.slug)}>
                  {p.title}
                </button>
              ),
            },
            { key: 'code', label: 'Slug', render: (p) => <code>{p.slug}</code> },
            { key: 'version', label: 'Version', class: 'num', sort: (p) => p.version, render: (p) => p.version },
            { key: 'published', label: 'Published', sort: (p) => p.published_at, render: (p) => formatDateTime(p.published_at) },
            {
              key: 'actions',
              label: 'Actions',
              render: (p) => (
                <button type="button" onClick={() => setPublishing(p.slug)}>
                  Publish new version…
                </button>
              ),
            },
          ]}
        />
      )}
      {slug ? <Versions key={`${slug}-${generation}`} slug={slug} /> : null}
      {publishing !== null ? (
        <PublishDialog
          slug={publishing}
          onClose={() => setPublishing(null)}
          onDone={(v) => {
            setPublishing(null);
            setNotice(`${v.slug} version ${v.version} published (${v.languages.join(', ')}).`);
            setSlug(v.slug);
            setGeneration((g) => g + 1);
          }}
        />
      ) : null}
    </>
  );
}

function Versions({ slug }: { slug: string }) {
  const [versions, setVersions] = useState<PageVersionOut[] | null>(null);
  const [shown, setShown] = useState<PageOut | null>(null);
  const [error, setError] = useState<unknown>(null);
  useEffect(() => {
    ok(api.GET('/api/content/pages/{slug}/versions', { params: { path: { slug } } }))
      .then(setVersions)
      .catch(setError);
  }, [slug]);
  const show = (version: number, lang: Lang) =>
    ok(api.GET('/api/content/pages/{slug}', { params: { path: { slug }, query: { version, lang } } }))
      .then(setShown)
      .catch(setError);
  return (
    <section class="section" aria-labelledby="versions-title">
      <h2 id="versions-title">
        Versions of <code>{slug}</code>
      </h2>
      <ErrorBanner error={error} />
      {versions === null ? (
        <Loading what="versions" />
      ) : (
        <DataTable
          caption={`Versions of ${slug}`}
          rows={versions}
          rowKey={(v) => v.version}
          columns={[
            { key: 'version', label: 'Version', class: 'num', render: (v) => v.version },
            { key: 'published', label: 'Published', render: (v) => formatDateTime(v.published_at) },
            { key: 'acceptance', label: 'Riders must accept', render: (v) => (v.requires_acceptance ? 'yes' : 'no') },
            {
              key: 'languages',
              label: 'Languages (read)',
              render: (v) => (
                <span class="actions">
                  {v.languages.map((lang) => (
                    <button key={lang} type="button" onClick={() => void show(v.version, lang)}>
                      {lang}
                    </button>
                  ))}
                </span>
              ),
            },
          ]}
        />
      )}
      {shown ? (
        <article class="section" lang={shown.lang}>
          <h3>
            {shown.title} <small class="muted">(version {shown.version}, {shown.lang})</small>
          </h3>
          <pre class="json">{shown.markdown}</pre>
        </article>
      ) : null}
    </section>
  );
}

function PublishDialog({ slug: initial, onClose, onDone }: { slug: string; onClose: () => void; onDone: (v: PageVersionOut) => void }) {
  const [slug, setSlug] = useState(initial);
  const [texts, setTexts] = useState<Record<Lang, { title: string; markdown: string }>>({
    en: { title: '', markdown: '' },
    ne: { title: '', markdown: '' },
  });
  const [acceptance, setAcceptance] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  // An existing page starts from its newest text in each language.
  useEffect(() => {
    if (!initial) return;
    for (const lang of LANGS) {
      ok(api.GET('/api/content/pages/{slug}', { params: { path: { slug: initial }, query: { lang } } }))
        .then((p) => p.lang === lang && setTexts((t) => ({ ...t, [lang]: { title: p.title, markdown: p.markdown } })))
        .catch(() => undefined);
    }
  }, [initial]);
  const edit = (lang: Lang, field: 'title' | 'markdown') => (e: Event) =>
    setTexts((t) => ({ ...t, [lang]: { ...t[lang], [field]: (e.currentTarget as HTMLInputElement).value } }));
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const given = LANGS.filter((l) => l === 'en' || texts[l].title.trim() || texts[l].markdown.trim()).map((lang) => ({
      lang,
      title: texts[lang].title.trim(),
      markdown: texts[lang].markdown,
    }));
    try {
      onDone(
        await ok(
          api.POST('/api/admin/content/pages/{slug}/versions', {
            params: { path: { slug: slug.trim() } },
            body: { texts: given, requires_acceptance: acceptance },
          }),
        ),
      );
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };
  return (
    <Dialog title={initial ? `New version of ${initial}` : 'New page'} onClose={onClose}>
      <form onSubmit={submit}>
        {!initial ? (
          <label>
            Slug (lower-case words joined by -)
            <input required pattern="[a-z0-9]+(-[a-z0-9]+)*" maxLength={64} value={slug} onInput={(e) => setSlug(e.currentTarget.value)} />
          </label>
        ) : null}
        {LANGS.map((lang) => (
          <fieldset key={lang}>
            <legend>{lang === 'en' ? 'English (required)' : 'Nepali (optional)'}</legend>
            <label>
              Title ({lang})
              <input required={lang === 'en'} maxLength={200} value={texts[lang].title} onInput={edit(lang, 'title')} />
            </label>
            <label>
              Text ({lang}, Markdown)
              <textarea required={lang === 'en'} rows={6} value={texts[lang].markdown} onInput={edit(lang, 'markdown')} />
            </label>
          </fieldset>
        ))}
        {LEGAL.has(slug.trim()) ? (
          <label class="check">
            <input type="checkbox" checked={acceptance} onChange={(e) => setAcceptance(e.currentTarget.checked)} />
            Riders must accept this version
          </label>
        ) : null}
        <ErrorBanner error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            Publish
          </button>
        </div>
      </form>
    </Dialog>
  );
}
