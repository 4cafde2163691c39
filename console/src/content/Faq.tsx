// FAQ: items (published or not) by category with their texts; add, edit,
// publish/unpublish and delete items; add categories.
import { useEffect, useState } from 'preact/hooks';

import { api, ok, session } from '../api/client';
import type { AdminItemOut, Lang } from '../api/types';
import { can } from '../auth/permissions';
import { useStore } from '../store';
import { Dialog, ErrorBanner, Loading, Notice, StatusBadge } from '../ui/components';
import { formatCount } from '../ui/format';
import { DataTable } from '../ui/table';

const LANGS = ['en', 'ne'] as const satisfies readonly Lang[];
type Texts = Record<Lang, { question: string; answer: string }>;

export function Faq() {
  const operator = useStore(session, (s) => s?.operator);
  const manage = can(operator, 'faq.manage');
  const [items, setItems] = useState<AdminItemOut[] | null>(null);
  const [editing, setEditing] = useState<AdminItemOut | 'new' | null>(null);
  const [category, setCategory] = useState(false);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    ok(api.GET('/api/admin/content/faq/items')).then(setItems).catch(setError);
  }, [generation]);
  const done = (message: string) => {
    setEditing(null);
    setCategory(false);
    setNotice(message);
    setGeneration((g) => g + 1);
  };
  const remove = async (item: AdminItemOut) => {
    if (!window.confirm(`Delete FAQ item #${item.id}?`)) return;
    try {
      await ok(api.DELETE('/api/admin/content/faq/items/{id}', { params: { path: { id: item.id } } }));
      done(`FAQ item #${item.id} deleted.`);
    } catch (e) {
      setError(e);
    }
  };
  const question = (i: AdminItemOut) => i.texts.find((t) => t.lang === 'en')?.question ?? i.texts[0]?.question ?? '—';
  return (
    <>
      {manage ? (
        <p class="actions">
          <button type="button" class="primary" onClick={() => setEditing('new')}>
            New FAQ item…
          </button>
          {can(operator, 'faq.categories') ? (
            <button type="button" onClick={() => setCategory(true)}>
              New category…
            </button>
          ) : null}
        </p>
      ) : null}
      {notice ? <Notice>{notice}</Notice> : null}
      <ErrorBanner error={error} />
      {items === null ? (
        <Loading what="FAQ" />
      ) : (
        <DataTable
          caption="FAQ items"
          rows={items}
          rowKey={(i) => i.id}
          empty="No FAQ items."
          columns={[
            { key: 'category', label: 'Category', sort: (i) => i.category, render: (i) => <code>{i.category}</code> },
            { key: 'position', label: 'Position', class: 'num', sort: (i) => i.position, render: (i) => i.position },
            { key: 'question', label: 'Question (en)', sort: question, render: question },
            { key: 'langs', label: 'Languages', render: (i) => i.texts.map((t) => t.lang).join(', ') },
            {
              key: 'published',
              label: 'State',
              sort: (i) => (i.is_published ? 1 : 0),
              render: (i) => <StatusBadge status={i.is_published ? 'published' : 'draft'} />,
            },
            {
              key: 'votes',
              label: 'Helpful',
              class: 'num',
              sort: (i) => i.helpful_count,
              render: (i) => `${formatCount(i.helpful_count)} / ${formatCount(i.helpful_count + i.not_helpful_count)}`,
            },
            ...(manage
              ? [
                  {
                    key: 'actions',
                    label: 'Actions',
                    render: (i: AdminItemOut) => (
                      <span class="actions">
                        <button type="button" onClick={() => setEditing(i)}>
                          Edit…
                        </button>
                        <button type="button" class="danger" onClick={() => void remove(i)}>
                          Delete
                        </button>
                      </span>
                    ),
                  },
                ]
              : []),
          ]}
        />
      )}
      {editing ? (
        <ItemDialog item={editing === 'new' ? null : editing} onClose={() => setEditing(null)} onDone={done} />
      ) : null}
      {category ? <CategoryDialog onClose={() => setCategory(false)} onDone={done} /> : null}
    </>
  );
}

function ItemDialog({ item, onClose, onDone }: { item: AdminItemOut | null; onClose: () => void; onDone: (m: string) => void }) {
  const [categorySlug, setCategorySlug] = useState(item?.category ?? '');
  const [position, setPosition] = useState(String(item?.position ?? 0));
  const [published, setPublished] = useState(item?.is_published ?? true);
  const [texts, setTexts] = useState<Texts>(() => {
    const of = (lang: Lang) => item?.texts.find((t) => t.lang === lang);
    return Object.fromEntries(
      LANGS.map((l) => [l, { question: of(l)?.question ?? '', answer: of(l)?.answer_markdown ?? '' }]),
    ) as Texts;
  });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const edit = (lang: Lang, field: 'question' | 'answer') => (e: Event) =>
    setTexts((t) => ({ ...t, [lang]: { ...t[lang], [field]: (e.currentTarget as HTMLInputElement).value } }));
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const body = {
      category: categorySlug.trim(),
      position: Number.parseInt(position, 10) || 0,
      is_published: published,
      texts: LANGS.filter((l) => l === 'en' || texts[l].question.trim()).map((lang) => ({
        lang,
        question: texts[lang].question.trim(),
        answer: texts[lang].answer,
      })),
    };
    try {
      const out = item
        ? await ok(api.PUT('/api/admin/content/faq/items/{id}', { params: { path: { id: item.id } }, body }))
        : await ok(api.POST('/api/admin/content/faq/items', { body }));
      onDone(`FAQ item #${out.id} ${item ? 'saved' : 'added'}.`);
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };
  return (
    <Dialog title={item ? `Edit FAQ item #${item.id}` : 'New FAQ item'} onClose={onClose}>
      <form onSubmit={submit}>
        <div class="grid-form">
          <label>
            Category (slug)
            <input required value={categorySlug} onInput={(e) => setCategorySlug(e.currentTarget.value)} />
          </label>
          <label>
            Position
            <input inputMode="numeric" value={position} onInput={(e) => setPosition(e.currentTarget.value)} />
          </label>
          <label class="check">
            <input type="checkbox" checked={published} onChange={(e) => setPublished(e.currentTarget.checked)} />
            Published
          </label>
        </div>
        {LANGS.map((lang) => (
          <fieldset key={lang}>
            <legend>{lang === 'en' ? 'English (required)' : 'Nepali (optional)'}</legend>
            <label>
              Question ({lang})
              <input required={lang === 'en'} value={texts[lang].question} onInput={edit(lang, 'question')} />
            </label>
            <label>
              Answer ({lang}, Markdown)
              <textarea required={lang === 'en'} rows={4} value={texts[lang].answer} onInput={edit(lang, 'answer')} />
            </label>
          </fieldset>
        ))}
        <ErrorBanner error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            Save
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function CategoryDialog({ onClose, onDone }: { onClose: () => void; onDone: (m: string) => void }) {
  const [slug, setSlug] = useState('');
  const [position, setPosition] = useState('0');
  const [names, setNames] = useState<Record<Lang, string>>({ en: '', ne: '' });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const out = await ok(
        api.POST('/api/admin/content/faq/categories', {
          body: {
            slug: slug.trim(),
            position: Number.parseInt(position, 10) || 0,
            names: LANGS.filter((l) => l === 'en' || names[l].trim()).map((lang) => ({ lang, name: names[lang].trim() })),
          },
        }),
      );
      onDone(`Category ${out.slug} added.`);
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };
  return (
    <Dialog title="New FAQ category" onClose={onClose}>
      <form onSubmit={submit}>
        <label>
          Slug
          <input required value={slug} onInput={(e) => setSlug(e.currentTarget.value)} />
        </label>
        <label>
          Position
          <input inputMode="numeric" value={position} onInput={(e) => setPosition(e.currentTarget.value)} />
        </label>
        {LANGS.map((lang) => (
          <label key={lang}>
            Name ({lang}{lang === 'en' ? ', required' : ', optional'})
            <input required={lang === 'en'} value={names[lang]} onInput={(e) => setNames({ ...names, [lang]: e.currentTarget.value })} />
          </label>
        ))}
        <ErrorBanner error={error} />
        <div class="dialog-actions">
          <button type="button" onClick={onClose} disabled={busy}>
            Cancel
          </button>
          <button type="submit" class="primary" disabled={busy}>
            Add
          </button>
        </div>
      </form>
    </Dialog>
  );
}
