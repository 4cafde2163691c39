// Which operator may see which page and press which button: the one place
// that maps roles to permissions. The API enforces the same rules; this only
// keeps operators from being shown what they cannot do.
import type { Role } from '../api/types';

export type Permission =
  | 'dashboard.view'
  | 'stations.view'
  | 'stations.eject'
  | 'kyc.review'
  | 'refunds.review'
  | 'coupons.view'
  | 'coupons.manage'
  | 'plugins.view'
  | 'plugins.reload'
  | 'users.adjust_balance';

export type OperatorRole = Exclude<Role, 'user'>;

const EVERYTHING: readonly Permission[] = [
  'dashboard.view',
  'stations.view',
  'stations.eject',
  'kyc.review',
  'refunds.review',
  'coupons.view',
  'coupons.manage',
  'plugins.view',
  'plugins.reload',
  'users.adjust_balance',
];

/**
 * Keyed by the API's own `Role` type: when the operator roles of the admin
 * panel (owner, support, finance, field_tech) reach the API, this stops
 * type-checking until each has its entry. Planned, from the admin-panel
 * issue: owner and admin everything; support views and KYC, no money moves;
 * finance refunds, coupons and balance adjustments; field_tech stations and
 * ejects.
 */
const ROLE_PERMISSIONS: Record<OperatorRole, readonly Permission[]> = {
  admin: EVERYTHING,
};

export function can(role: Role | undefined, permission: Permission): boolean {
  if (!role || role === 'user') return false;
  return ROLE_PERMISSIONS[role]?.includes(permission) ?? false;
}

export function isOperator(role: Role | undefined): boolean {
  return role !== undefined && role !== 'user' && role in ROLE_PERMISSIONS;
}
