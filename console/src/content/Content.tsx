// Content operators look after: pages (versions per language), FAQ
// categories and items, support threads, achievements. One page with a tab
// per kind; each tab shows only for the roles whose API routes allow it.
import { useState } from 'preact/hooks';

import { session } from '../api/client';
import { can, type Permission } from '../auth/permissions';
import { useStore } from '../store';
import { PageHeader } from '../ui/components';
import { Achievements } from './Achievements';
import { Faq } from './Faq';
import { Pages } from './Pages';
import { Support } from './Support';

const TABS = [
  { id: 'support', label: 'Support threads', permission: 'support.view', page: Support },
  { id: 'pages', label: 'Pages', permission: 'content.publish', page: Pages },
  { id: 'faq', label: 'FAQ', permission: 'faq.view', page: Faq },
  { id: 'achievements', label: 'Achievements', permission: 'achievements.view', page: Achievements },
] as const satisfies readonly { id: string; label: string; permission: Permission; page: unknown }[];

export function Content() {
  const operator = useStore(session, (s) => s?.operator);
  const tabs = TABS.filter((t) => can(operator, t.permission));
  const [tab, setTab] = useState<string>(tabs[0]?.id ?? '');
  const current = tabs.find((t) => t.id === tab) ?? tabs[0];
  const Page = current?.page;
  return (
    <>
      <PageHeader title="Content" />
      <div class="tabs" role="tablist" aria-label="Kinds of content">
        {tabs.map((t) => (
          <button
            key={t.id}
            type="button"
            role="tab"
            id={`tab-${t.id}`}
            aria-selected={t.id === current?.id}
            aria-controls="tab-panel"
            onClick={() => setTab(t.id)}
          >
            {t.label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id="tab-panel" aria-labelledby={current ? `tab-${current.id}` : undefined}>
        {Page ? <Page /> : <p>Your role includes no content.</p>}
      </div>
    </>
  );
}
