// Achievements riders unlock: list with how many unlocked and claimed each;
// create and edit (counter, threshold, reward, window, texts per language).
import { useEffect, useState } from 'preact/hooks';

import { api, ok, session } from '../api/client';
import type { AchievementIn, AdminAchievementOut, Counter, Lang } from '../api/types';
import { can } from '../auth/permissions';
import { useStore } from '../store';
import { Dialog, ErrorBanner, Loading, Notice, StatusBadge } from '../ui/components';
import { formatCount, formatDateTime } from '../ui/format';
import { DataTable } from '../ui/table';

const LANGS = ['en', 'ne'] as const satisfies readonly Lang[];
/** Every counter, in the API's own type (a new one fails the type check until listed). */
const COUNTERS = {
  rentals_completed: 'rentals completed',
  on_time_returns: 'on-time returns',
  points_earned: 'points earned',
  referrals: 'referrals',
  distinct_stations: 'distinct stations',
  topups: 'top-ups',
  week_streak: 'weeks in a row with a rental',
} as const satisfies Record<Counter, string>;

export function Achievements() {
  const operator = useStore(session, (s) => s?.operator);
  const manage = can(operator, 'achievements.manage');
  const [list, setList] = useState<AdminAchievementOut[] | null>(null);
  const [editing, setEditing] = useState<AdminAchievementOut | 'new' | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    ok(api.GET('/api/admin/social/achievements')).then(setList).catch(setError);
  }, [generation]);
  const name = (a: AdminAchievementOut) => a.texts.find((t) => t.lang === 'en')?.name ?? a.code;
  return (
    <>
      {manage ? (
        <p>
          <button type="button" class="primary" onClick={() => setEditing('new')}>
            New achievement…
          </button>
        </p>
      ) : null}
      {notice ? <Notice>{notice}</Notice> : null}
      <ErrorBanner error={error} />
      {list === null ? (
        <Loading what="achievements" />
      ) : (
        <DataTable
          caption="Achievements"
          rows={list}
          rowKey={(a) => a.code}
          empty="No achievements."
          columns={[
            {
              key: 'name',
              label: 'Achievement',
              sort: name,
              render: (a) => (
                <>
                  {name(a)}
                  <br />
                  <code>{a.code}</code>
                </>
              ),
            },
            {
              key: 'rule',
              label: 'Unlocks at',
              sort: (a) => a.threshold,
              render: (a) => `${formatCount(a.threshold)} ${COUNTERS[a.counter]}`,
            },
            { key: 'reward', label: 'Reward (points)', class: 'num', sort: (a) => a.reward_points, render: (a) => formatCount(a.reward_points) },
            {
              key: 'window',
              label: 'Window',
              render: (a) => (
                <small>
                  {a.starts_at ? formatDateTime(a.starts_at) : 'always'} – {a.ends_at ? formatDateTime(a.ends_at) : 'open'}
                </small>
              ),
            },
            { key: 'active', label: 'State', render: (a) => <StatusBadge status={a.is_active ? 'active' : 'disabled'} /> },
            { key: 'unlocked', label: 'Unlocked', class: 'num', sort: (a) => a.unlocked_count, render: (a) => formatCount(a.unlocked_count) },
            { key: 'claimed', label: 'Claimed', class: 'num', sort: (a) => a.claimed_count, render: (a) => formatCount(a.claimed_count) },
            ...(manage
              ? [
                  {
                    key: 'actions',
                    label: 'Actions',
                    render: (a: AdminAchievementOut) => (
                      <button type="button" onClick={() => setEditing(a)}>
                        Edit…
                      </button>
                    ),
                  },
                ]
              : []),
          ]}
        />
      )}
      {editing ? (
        <AchievementDialog
          achievement={editing === 'new' ? null : editing}
          onClose={() => setEditing(null)}
          onDone={(m) => {
            setEditing(null);
            setNotice(m);
            setGeneration((g) => g + 1);
          }}
        />
      ) : null}
    </>
  );
}

/** "2026-12-08T06:15" (Nepal time, as a datetime-local input holds it) <-> RFC 3339. */
function toLocalInput(value: string | null | undefined): string {
  if (!value) return '';
  const nepal = new Date(new Date(value).getTime() + (5 * 60 + 45) * 60_000);
  return nepal.toISOString().slice(0, 16);
}
function fromLocalInput(value: string): string | null {
  return value ? `${value}:00+05:45` : null;
}

function AchievementDialog({
  achievement,
  onClose,
  onDone,
}: {
  achievement: AdminAchievementOut | null;
  onClose: () => void;
  onDone: (m: string) => void;
}) {
  const a = achievement;
  const [code, setCode] = useState(a?.code ?? '');
  const [counter, setCounter] = useState<Counter>(a?.counter ?? 'rentals_completed');
  const [threshold, setThreshold] = useState(String(a?.threshold ?? 1));
  const [reward, setReward] = useState(String(a?.reward_points ?? 0));
  const [startsAt, setStartsAt] = useState(toLocalInput(a?.starts_at));
  const [endsAt, setEndsAt] = useState(toLocalInput(a?.ends_at));
  const [active, setActive] = useState(a?.is_active ?? true);
  const [texts, setTexts] = useState<Record<Lang, { name: string; description: string }>>(() => {
    const of = (lang: Lang) => a?.texts.find((t) => t.lang === lang);
    return {
      en: { name: of('en')?.name ?? '', description: of('en')?.description ?? '' },
      ne: { name: of('ne')?.name ?? '', description: of('ne')?.description ?? '' },
    };
  });
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const edit = (lang: Lang, field: 'name' | 'description') => (e: Event) =>
    setTexts((t) => ({ ...t, [lang]: { ...t[lang], [field]: (e.currentTarget as HTMLInputElement).value } }));
  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    const body: AchievementIn = {
      code: code.trim(),
      counter,
      threshold: Number.parseInt(threshold, 10),
      reward_points: Number.parseInt(reward, 10),
      starts_at: fromLocalInput(startsAt),
      ends_at: fromLocalInput(endsAt),
      is_active: active,
      texts: LANGS.filter((l) => l === 'en' || texts[l].name.trim()).map((lang) => ({
        lang,
        name: texts[lang].name.trim(),
        description: texts[lang].description.trim(),
      })),
    };
    try {
      const out = a
        ? await ok(api.PUT('/api/admin/social/achievements/{code}', { params: { path: { code: a.code } }, body }))
        : await ok(api.POST('/api/admin/social/achievements', { body }));
      onDone(`Achievement ${out.code} ${a ? 'saved' : 'created'}.`);
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };
  return (
    <Dialog title={a ? `Edit ${a.code}` : 'New achievement'} onClose={onClose}>
      <form onSubmit={submit}>
        <div class="grid-form">
          <label>
            Code
            <input required disabled={a !== null} pattern="[a-z0-9_\-]{2,40}" value={code} onInput={(e) => setCode(e.currentTarget.value)} />
          </label>
          <label>
            Counter
            <select value={counter} onChange={(e) => setCounter(e.currentTarget.value as Counter)}>
              {(Object.keys(COUNTERS) as Counter[]).map((c) => (
                <option key={c} value={c}>
                  {COUNTERS[c]}
                </option>
              ))}
            </select>
          </label>
          <label>
            Threshold
            <input required inputMode="numeric" pattern="\d+" value={threshold} onInput={(e) => setThreshold(e.currentTarget.value)} />
          </label>
          <label>
            Reward (points)
            <input required inputMode="numeric" pattern="\d+" value={reward} onInput={(e) => setReward(e.currentTarget.value)} />
          </label>
          <label>
            Counts from (Nepal time, optional)
            <input type="datetime-local" value={startsAt} onInput={(e) => setStartsAt(e.currentTarget.value)} />
          </label>
          <label>
            Counts until (Nepal time, optional)
            <input type="datetime-local" value={endsAt} onInput={(e) => setEndsAt(e.currentTarget.value)} />
          </label>
          <label class="check">
            <input type="checkbox" checked={active} onChange={(e) => setActive(e.currentTarget.checked)} />
            Active
          </label>
        </div>
        {a?.icon_url ? <p class="banner warn">Saving here removes the icon (an icon is set by upload id through the API).</p> : null}
        {LANGS.map((lang) => (
          <fieldset key={lang}>
            <legend>{lang === 'en' ? 'English (required)' : 'Nepali (optional)'}</legend>
            <label>
              Name ({lang})
              <input required={lang === 'en'} maxLength={80} value={texts[lang].name} onInput={edit(lang, 'name')} />
            </label>
            <label>
              Description ({lang})
              <textarea maxLength={500} rows={2} value={texts[lang].description} onInput={edit(lang, 'description')} />
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
