//! Issues users report at stations: report one, list one's own, and the
//! public list of a station's unresolved issues.
//!
//! Images are URLs of the reporter's own earlier uploads (`POST
//! /api/upload`), checked against `media_uploads`: a report cannot point at
//! someone else's KYC photo or at an arbitrary web address.

use std::collections::BTreeSet;

use axum::{Json, extract::State, http::StatusCode};
use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::favorites::station_id;
use crate::{
    core::{
        ApiError, ApiJson, ApiPath, ApiQuery, AuthUser, Page, PageParams, error::ErrorBody, now_ts, opt_ts, rate_limit,
        text_enum::text_enum, ts_to_rfc3339,
    },
    state::AppState,
};

pub const MAX_IMAGES: usize = 5;
pub const REPORTS_PER_HOUR: u32 = 10;
const DESCRIPTION_CHARS: std::ops::RangeInclusive<usize> = 10..=1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IssueType {
    NoPowerBank,
    SlotStuck,
    Damaged,
    Offline,
    Payment,
    /// The spec's: the station needs cleaning.
    Dirty,
    /// The spec's: the station is not where the map shows it.
    LocationWrong,
    Other,
}

impl IssueType {
    pub fn as_str(self) -> &'static str {
        match self {
            IssueType::NoPowerBank => "no_power_bank",
            IssueType::SlotStuck => "slot_stuck",
            IssueType::Damaged => "damaged",
            IssueType::Offline => "offline",
            IssueType::Payment => "payment",
            IssueType::Dirty => "dirty",
            IssueType::LocationWrong => "location_wrong",
            IssueType::Other => "other",
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportIssueIn {
    pub issue_type: IssueType,
    /// 10 to 1000 characters.
    pub description: String,
    /// Up to 5 URLs of images the caller uploaded with `POST /api/upload`.
    #[serde(default)]
    pub images: Vec<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct StationRef {
    pub serial_number: String,
    pub name: String,
}

text_enum! {
    /// Where a reported issue stands (`station_issues.status`). The first
    /// three are unresolved: the public list shows those (its query spells
    /// them out to match the partial index `station_issues_station_open`).
    pub enum IssueStatus {
        Open = "open",
        Acknowledged = "acknowledged",
        InProgress = "in_progress",
        Resolved = "resolved",
        /// Closed without action (before operators triaged with `rejected`).
        Dismissed = "dismissed",
        /// Closed by an operator without action, with a note.
        Rejected = "rejected",
    }
}

impl IssueStatus {
    /// Whether an operator may move an issue (of a station or a rental) from
    /// this status to `to`: open → in_progress → resolved | rejected, and an
    /// open report may be rejected at once. `acknowledged` (older reports)
    /// counts as open; the end states are final.
    pub fn may_become(self, to: IssueStatus) -> bool {
        use IssueStatus::*;
        matches!((self, to), (Open | Acknowledged, InProgress | Rejected) | (InProgress, Resolved | Rejected))
    }

    /// Resolved, rejected or dismissed: nothing more happens to it.
    pub fn is_closed(self) -> bool {
        matches!(self, IssueStatus::Resolved | IssueStatus::Rejected | IssueStatus::Dismissed)
    }
}

/// An issue as its reporter sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MyIssueOut {
    pub id: i64,
    pub station: StationRef,
    /// `no_power_bank`, `slot_stuck`, `damaged`, `offline`, `payment`, `dirty`, `location_wrong` or `other`.
    pub issue_type: String,
    pub description: String,
    pub images: Vec<String>,
    pub status: IssueStatus,
    pub reported_at: String,
    pub updated_at: String,
    pub resolved_at: Option<String>,
}

/// An unresolved issue as anyone sees it: nothing about who reported it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PublicIssueOut {
    pub id: i64,
    pub issue_type: String,
    pub description: String,
    /// `open`, `acknowledged` or `in_progress`.
    pub status: IssueStatus,
    pub reported_at: String,
}

fn clean_description(raw: &str) -> Result<String, ApiError> {
    let text = raw.trim();
    crate::core::text::check_user_text("description", text, true)?;
    let chars = text.chars().count();
    if !DESCRIPTION_CHARS.contains(&chars) {
        return Err(ApiError::invalid_field(
            "description",
            format!("must be {} to {} characters", DESCRIPTION_CHARS.start(), DESCRIPTION_CHARS.end()),
        ));
    }
    if text.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return Err(ApiError::invalid_field("description", "must not contain control characters"));
    }
    Ok(text.to_string())
}

fn clean_images(images: Vec<String>) -> Result<Vec<String>, ApiError> {
    if images.len() > MAX_IMAGES {
        return Err(ApiError::invalid_field("images", format!("at most {MAX_IMAGES} images")));
    }
    let images: Vec<String> = images.into_iter().map(|u| u.trim().to_string()).collect();
    let distinct: BTreeSet<&str> = images.iter().map(String::as_str).collect();
    if distinct.len() != images.len() {
        return Err(ApiError::invalid_field("images", "the same image is listed twice"));
    }
    if images.iter().any(|u| u.is_empty() || u.len() > 500) {
        return Err(ApiError::invalid_field("images", "each image must be an upload URL"));
    }
    Ok(images)
}

const MY_ISSUE_SELECT: &str = "
    SELECT i.id, s.serial_number, s.name, i.issue_type, i.description, i.images, i.status,
           i.created_at, i.updated_at, i.resolved_at
    FROM station_issues i JOIN stations s ON s.id = i.station_id";

fn my_issue_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<MyIssueOut> {
    let images: String = r.get(5)?;
    Ok(MyIssueOut {
        id: r.get(0)?,
        station: StationRef { serial_number: r.get(1)?, name: r.get(2)? },
        issue_type: r.get(3)?,
        description: r.get(4)?,
        images: serde_json::from_str(&images).unwrap_or_default(),
        status: r.get(6)?,
        reported_at: ts_to_rfc3339(r.get(7)?),
        updated_at: ts_to_rfc3339(r.get(8)?),
        resolved_at: opt_ts(r.get(9)?),
    })
}

fn load_my_issue(c: &Connection, id: i64) -> Result<MyIssueOut, ApiError> {
    Ok(c.query_row(&format!("{MY_ISSUE_SELECT} WHERE i.id = ?1"), [id], my_issue_from_row)?)
}

/// Reports a problem at a station. Limited to 10 reports an hour per user.
#[utoipa::path(
    post, path = "/api/stations/{sn}/report-issue", tag = "stations",
    security(("bearer" = [])),
    params(("sn" = String, Path, description = "Station serial number")),
    request_body = ReportIssueIn,
    responses(
        (status = 201, description = "Issue recorded", body = MyIssueOut),
        (status = 400, description = "Invalid fields, or an image that is not one of the caller's uploads", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 404, description = "No such station", body = ErrorBody),
        (status = 429, description = "Too many reports this hour; see Retry-After", body = ErrorBody),
    )
)]
pub async fn report_issue(
    State(state): State<AppState>,
    user: AuthUser,
    ApiPath(sn): ApiPath<String>,
    ApiJson(body): ApiJson<ReportIssueIn>,
) -> Result<(StatusCode, Json<MyIssueOut>), ApiError> {
    let description = clean_description(&body.description)?;
    let images = clean_images(body.images)?;
    let issue = state
        .db
        .write(move |tx| {
            let now = now_ts();
            // Counted inside the transaction: a refused report rolls its hit back.
            rate_limit::hit(tx, &format!("station_issue:user:{}", user.id), REPORTS_PER_HOUR, 3600, now)?;
            let station = station_id(tx, &sn, false)?;
            let images_json = serde_json::to_string(&images).map_err(|e| ApiError::internal(e.to_string()))?;
            if !images.is_empty() {
                let mut stmt = tx.prepare_cached(
                    "SELECT url FROM media_uploads
                     WHERE user_id = ?1 AND content_type LIKE 'image/%'
                       AND url IN (SELECT value FROM json_each(?2))",
                )?;
                let owned: BTreeSet<String> =
                    stmt.query_map(params![user.id, images_json], |r| r.get(0))?.collect::<Result<_, _>>()?;
                if let Some(foreign) = images.iter().find(|u| !owned.contains(*u)) {
                    return Err(ApiError::invalid_field(
                        "images",
                        format!("{foreign} is not an image you uploaded with POST /api/upload"),
                    ));
                }
            }
            tx.execute(
                "INSERT INTO station_issues (station_id, reporter_id, issue_type, description, images, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6)",
                params![station, user.id, body.issue_type.as_str(), description, images_json, now],
            )?;
            load_my_issue(tx, tx.last_insert_rowid())
        })
        .await?;
    Ok((StatusCode::CREATED, Json(issue)))
}

/// Issues the caller reported, newest first.
#[utoipa::path(
    get, path = "/api/stations/my-reports", tag = "stations",
    security(("bearer" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "A page of the caller's reports", body = Page<MyIssueOut>),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
    )
)]
pub async fn my_reports(
    State(state): State<AppState>,
    user: AuthUser,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<MyIssueOut>>, ApiError> {
    let limit = paging.limit()?;
    let before = paging.before_id()?;
    let rows = state
        .db
        .read(move |c| {
            let mut stmt = c.prepare_cached(&format!(
                "{MY_ISSUE_SELECT} WHERE i.reporter_id = ?1 AND i.id < ?2 ORDER BY i.id DESC LIMIT ?3"
            ))?;
            Ok(stmt
                .query_map(params![user.id, before, limit + 1], my_issue_from_row)?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |i| i.id)))
}

/// A station's unresolved issues, newest first, without reporter details.
#[utoipa::path(
    get, path = "/api/stations/{sn}/issues", tag = "stations",
    params(("sn" = String, Path, description = "Station serial number"), PageParams),
    responses(
        (status = 200, description = "A page of open issues", body = Page<PublicIssueOut>),
        (status = 400, description = "Bad cursor or limit", body = ErrorBody),
        (status = 404, description = "No such station", body = ErrorBody),
    )
)]
pub async fn station_issues(
    State(state): State<AppState>,
    ApiPath(sn): ApiPath<String>,
    ApiQuery(paging): ApiQuery<PageParams>,
) -> Result<Json<Page<PublicIssueOut>>, ApiError> {
    let limit = paging.limit()?;
    let before = paging.before_id()?;
    let rows = state
        .db
        .read(move |c| {
            let station = station_id(c, &sn, false)?;
            let mut stmt = c.prepare_cached(
                "SELECT id, issue_type, description, status, created_at FROM station_issues
                 WHERE station_id = ?1 AND status IN ('open', 'acknowledged', 'in_progress') AND id < ?2
                 ORDER BY id DESC LIMIT ?3",
            )?;
            Ok(stmt
                .query_map(params![station, before, limit + 1], |r| {
                    Ok(PublicIssueOut {
                        id: r.get(0)?,
                        issue_type: r.get(1)?,
                        description: r.get(2)?,
                        status: r.get(3)?,
                        reported_at: ts_to_rfc3339(r.get(4)?),
                    })
                })?
                .collect::<Result<Vec<_>, _>>()?)
        })
        .await?;
    Ok(Json(Page::from_rows(rows, limit, |i| i.id)))
}

/// A triage note: trimmed, 1 to 2000 characters of plain text.
pub fn clean_note(note: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(note) = note.map(str::trim) else { return Ok(None) };
    if note.is_empty() || note.chars().count() > 2000 {
        return Err(ApiError::invalid_field("note", "1 to 2000 characters"));
    }
    crate::core::text::check_user_text("note", note, true)?;
    Ok(Some(note.to_string()))
}

/// The status an issue moves to: 409 `invalid_transition` for a move the
/// triage does not allow (resolving a resolved issue is one), or
/// `issue_closed` for a change without a status to a closed issue;
/// resolving or rejecting needs a note in the same request (400).
pub fn check_move(from: IssueStatus, to: Option<IssueStatus>, note: Option<&str>) -> Result<IssueStatus, ApiError> {
    let Some(to) = to else {
        if from.is_closed() {
            return Err(ApiError::conflict("issue_closed", format!("the issue is {from}"))
                .with_details(serde_json::json!({ "status": from })));
        }
        return Ok(from);
    };
    if to == from && !from.is_closed() {
        return Ok(from);
    }
    if !from.may_become(to) {
        return Err(ApiError::conflict("invalid_transition", format!("an issue that is {from} cannot become {to}"))
            .with_details(serde_json::json!({ "from": from, "to": to })));
    }
    if to.is_closed() && note.is_none() {
        return Err(ApiError::invalid_field("note", format!("required to mark it {to}")));
    }
    Ok(to)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn triage_moves_only_forward() {
        use IssueStatus::*;
        assert_eq!(check_move(Open, Some(InProgress), None).unwrap(), InProgress);
        assert_eq!(check_move(Acknowledged, Some(Rejected), Some("spam")).unwrap(), Rejected);
        assert_eq!(check_move(InProgress, Some(Resolved), Some("fixed")).unwrap(), Resolved);
        assert_eq!(check_move(Open, None, None).unwrap(), Open);
        assert_eq!(check_move(Open, Some(Resolved), Some("fixed")).unwrap_err().code, "invalid_transition");
        assert_eq!(check_move(InProgress, Some(Open), None).unwrap_err().code, "invalid_transition");
        assert_eq!(check_move(Resolved, Some(Resolved), Some("again")).unwrap_err().code, "invalid_transition");
        assert_eq!(check_move(Rejected, None, None).unwrap_err().code, "issue_closed");
        assert_eq!(check_move(InProgress, Some(Rejected), None).unwrap_err().code, "validation_failed");
        assert!(clean_note(Some("  ")).is_err());
        assert_eq!(clean_note(Some(" done ")).unwrap().as_deref(), Some("done"));
    }

    #[test]
    fn descriptions_and_images_are_checked() {
        assert!(clean_description("too short").is_err());
        assert_eq!(clean_description("  slot 3 is stuck  ").unwrap(), "slot 3 is stuck");
        assert!(clean_description(&"x".repeat(1001)).is_err());
        assert!(clean_description("bell \u{7} character here").is_err());
        assert!(clean_description("line one\nline two").is_ok());
        assert!(clean_images(vec!["a".into(); 6]).is_err());
        assert!(clean_images(vec!["a".into(), "a".into()]).is_err());
        assert!(clean_images(vec![String::new()]).is_err());
        assert_eq!(clean_images(vec![" u ".into()]).unwrap(), vec!["u"]);
    }
}
