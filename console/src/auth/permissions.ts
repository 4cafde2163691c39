// Which operator may see which page and press which button.
//
// The API is the authority: each operator route declares its roles once
// (`x-roles` in the OpenAPI document) and `GET /api/admin/me` lists the
// routes the signed-in operator's role may call. Here every permission is
// the API operation it needs, typed against the generated document, so a
// renamed or removed route fails the type check and the console can never
// show a button the API would refuse (or hide one it would allow). Hiding is
// only a courtesy: the API enforces every rule itself.
import type { MeOut, paths } from '../api/types';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** "POST /api/admin/users/{id}/wallet-adjustments": one operation of the API document. */
export type Operation = {
  [P in keyof paths]: {
    [M in Method & keyof paths[P]]: [NonNullable<paths[P][M]>] extends [never]
      ? never
      : `${Uppercase<M>} ${P & string}`;
  }[Method & keyof paths[P]];
}[keyof paths];

/** Each permission is the operation it needs (the one the page or button calls first). */
const PERMISSIONS = {
  // Every operator: the live feed is open to all roles.
  'dashboard.view': 'GET /api/admin/events',
  'stations.view': 'GET /api/admin/events',
  'stations.eject': 'POST /api/admin/stations/{sn}/eject',
  'stations.link': 'GET /api/admin/stations/{sn}/link',
  'kyc.review': 'GET /api/admin/kyc',
  'refunds.review': 'GET /api/admin/refunds',
  'coupons.view': 'GET /api/admin/coupons',
  'coupons.manage': 'POST /api/admin/coupons',
  'plugins.view': 'GET /api/admin/plugins',
  'plugins.reload': 'POST /api/admin/plugins/reload',
  'releases.view': 'GET /api/admin/plugins/{name}/releases',
  'releases.upload': 'POST /api/admin/plugins/{name}/releases',
  'releases.promote': 'POST /api/admin/plugins/{name}/releases/{id}/promote',
  'releases.rollback': 'POST /api/admin/plugins/{name}/rollback',
  'users.view': 'GET /api/admin/users',
  'users.suspend': 'POST /api/admin/users/{id}/suspend',
  'users.ban': 'POST /api/admin/users/{id}/ban',
  'users.reactivate': 'POST /api/admin/users/{id}/reactivate',
  'users.adjust_balance': 'POST /api/admin/users/{id}/wallet-adjustments',
  'users.adjust_points': 'POST /api/admin/users/{id}/points-adjustments',
  'users.note': 'POST /api/admin/users/{id}/notes',
  'audit.view': 'GET /api/admin/audit',
  'audit.verify': 'GET /api/admin/audit/verify',
  'operators.manage': 'GET /api/admin/operators',
  'operators.create': 'POST /api/admin/operators',
  'operators.role': 'POST /api/admin/operators/{id}/role',
  'operators.disable': 'POST /api/admin/operators/{id}/disable',
  'operators.enable': 'POST /api/admin/operators/{id}/enable',
  'content.publish': 'POST /api/admin/content/pages/{slug}/versions',
  'faq.view': 'GET /api/admin/content/faq/items',
  'faq.manage': 'POST /api/admin/content/faq/items',
  'faq.categories': 'POST /api/admin/content/faq/categories',
  'support.view': 'GET /api/admin/support/threads',
  'support.reply': 'POST /api/admin/support/threads/{id}/reply',
  'support.close': 'POST /api/admin/support/threads/{id}/close',
  'achievements.view': 'GET /api/admin/social/achievements',
  'achievements.manage': 'POST /api/admin/social/achievements',
} as const satisfies Record<string, Operation>;

export type Permission = keyof typeof PERMISSIONS;

/** The operator as `GET /api/admin/me` describes them (role and callable routes). */
export type Operator = MeOut;

const allowedSets = new WeakMap<Operator, Set<string>>();

function allowedOf(operator: Operator): Set<string> {
  let set = allowedSets.get(operator);
  if (!set) {
    set = new Set(operator.allowed.map((r) => `${r.method.toUpperCase()} ${r.path}`));
    allowedSets.set(operator, set);
  }
  return set;
}

/** May this operator do `permission`? (The API's own list of their routes decides.) */
export function can(operator: Operator | null | undefined, permission: Permission): boolean {
  if (!operator) return false;
  return allowedOf(operator).has(PERMISSIONS[permission]);
}
