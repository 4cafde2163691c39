// Names for the API's schemas, generated from the host's OpenAPI document
// (schema.d.ts, made by `cargo xtask console`): when the API changes, the
// console stops type-checking instead of breaking for its users.
import type { components, paths } from './schema';

export type { paths };
type Schemas = components['schemas'];

export type ErrorBody = Schemas['ErrorBody'];
export type UserOut = Schemas['UserOut'];
export type Role = Schemas['Role'];
export type AuthResponse = Schemas['AuthResponse'];
export type TokenPair = Schemas['TokenPair'];
export type StationSummary = Schemas['StationSummary'];
export type StationDetail = Schemas['StationDetail'];
export type SlotOut = Schemas['SlotOut'];
export type StationLinkInfo = Schemas['StationLinkInfo'];
export type PublicIssueOut = Schemas['PublicIssueOut'];
export type LinkStatus = Schemas['LinkStatus'];
export type PluginOut = Schemas['PluginOut'];
export type ReloadOut = Schemas['ReloadOut'];
export type AdminKycOut = Schemas['AdminKycOut'];
export type RefundOut = Schemas['RefundOut'];
export type CouponOut = Schemas['CouponOut'];
export type ConsoleEvent = Schemas['ConsoleEvent'];
export type StationState = Schemas['StationState'];
export type LinkState = Schemas['LinkState'];
export type MeOut = Schemas['MeOut'];
export type OperatorRole = Schemas['OperatorRole'];
export type OperatorOut = Schemas['OperatorOut'];
export type UserRowOut = Schemas['UserRowOut'];
export type UserDetailOut = Schemas['UserDetailOut'];
export type RentalBriefOut = Schemas['RentalBriefOut'];
export type NoteOut = Schemas['NoteOut'];
export type AdjustmentOut = Schemas['AdjustmentOut'];
export type AuditEntryOut = Schemas['AuditEntryOut'];
export type AuditVerification = Schemas['AuditVerification'];
export type ReleaseOut = Schemas['ReleaseOut'];
export type ReleaseState = Schemas['ReleaseState'];
export type PageSummary = Schemas['PageSummary'];
export type PageOut = Schemas['PageOut'];
export type PageVersionOut = Schemas['PageVersionOut'];
export type Lang = Schemas['Lang'];
export type AdminItemOut = Schemas['AdminItemOut'];
export type FaqCategoryOut = Schemas['FaqCategoryOut'];
export type CategoryOut = Schemas['CategoryOut'];
export type ThreadSummary = Schemas['ThreadSummary'];
export type ThreadOut = Schemas['ThreadOut'];
export type AdminAchievementOut = Schemas['AdminAchievementOut'];
export type AchievementIn = Schemas['AchievementIn'];
export type Counter = Schemas['Counter'];

/** One page of a cursor-paginated list. */
export interface Page<T> {
  results: T[];
  next_cursor?: string | null;
}
