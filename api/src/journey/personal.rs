//! The first page and its neighbours: personal information (creates the application),
//! special needs, family, mobile (docs/domain/eligibility.md, docs/domain/application.md, docs/domain/eligibility.md).

use chrono::{DateTime, Duration, Utc};
use domain::DomainError;
use domain::application::{Application, Event, IdentityStatus, transition};
use domain::calendar::{HijriDate, JalaliDate};
use domain::eligibility::{PersonalClaim, check_lunar_option, check_personal_info};
use domain::ids::{Mobile, NationalId};
use domain::offices::SpecialNeeds;
use domain::person::{Gender, PersonName, Religion};
use domain::ports::RegistryRecord;
use domain::record_ids::CitizenId;
use persistence::app_write::{self, Along};
use persistence::applications::{self, ApplicationRow, Personal};
use persistence::audit::{self, Actor};
use persistence::{PiiKind, citizens};

use super::view::Family;
use super::{Target, amend, mutate};
use crate::auth::CitizenToken;
use crate::error::{ApiCode, ApiError, FieldErrors};
use crate::state::AppState;

/// Parsed personal information (docs/domain/eligibility.md: «مشخصات فردی»).
#[derive(Debug, Clone)]
pub struct PersonalInfo {
    pub birth_date: JalaliDate,
    pub birth_date_hijri: HijriDate,
    pub gender: Gender,
    pub religion: Religion,
    pub mother_name: PersonName,
    pub mobile: Mobile,
}

/// What the registry said about the stated information.
enum Inquiry {
    Verified(Box<RegistryRecord>),
    /// The registry did not answer; settle later.
    Pending,
}

/// Checks personal information against the registry: lunar option always; the serial,
/// solar birth date, gender and mother's first name when the registry answers.
async fn inquire(
    state: &AppState,
    national_id: &NationalId,
    serial: &str,
    info: &PersonalInfo,
) -> Result<Inquiry, ApiError> {
    let claim = PersonalClaim {
        birth_date: info.birth_date,
        gender: info.gender,
        lunar_birth_date: info.birth_date_hijri,
        mother_name: info.mother_name.clone(),
    };
    check_lunar_option(&claim)?;
    match state.registry.find(national_id).await {
        Ok(Some(record)) => {
            if record.serial != serial {
                return Err(DomainError::IdentityMismatch.into());
            }
            check_personal_info(&record, &claim)?;
            Ok(Inquiry::Verified(Box::new(record)))
        }
        Ok(None) => Err(DomainError::IdentityMismatch.into()),
        Err(_) => {
            state.metrics.event("registry", "unavailable_at_personal_info");
            Ok(Inquiry::Pending)
        }
    }
}

/// Whose personal information is saved.
#[derive(Debug, Clone)]
pub enum Applicant {
    /// A citizen the caller vouches for (a kiosk's applicant).
    Citizen(CitizenId),
    /// A citizen's token, its session checked by the read of the citizen.
    Session(CitizenToken),
}

/// Saves personal information. The first save creates the application in `draft`
/// ("first page registered"); later saves are edits, counted against the limit and
/// refused once enrollment has started. Returns the row and whether it was created.
pub async fn save_personal_info(
    state: &AppState,
    applicant: Applicant,
    info: PersonalInfo,
    actor: Actor,
) -> Result<(ApplicationRow, bool), ApiError> {
    let now = state.now();
    let citizen = state
        .run_api(move |conn| match applicant {
            Applicant::Citizen(id) => citizens::find(conn, &id)?.ok_or(ApiError::Unauthorized(ApiCode::TokenInvalid)),
            Applicant::Session(token) => token.citizen(conn, now).map(|(_, row)| row),
        })
        .await?;
    let citizen_id = &citizen.id;
    let national_id = NationalId::parse(&state.pii.open(PiiKind::NationalId, &citizen.nid_enc)?)?;
    let serial = state.pii.open(PiiKind::Serial, &citizen.serial_enc)?;
    let inquiry = inquire(state, &national_id, &serial, &info).await?;
    let identity = match inquiry {
        Inquiry::Verified(_) => IdentityStatus::Verified,
        Inquiry::Pending => IdentityStatus::Pending,
    };
    let now = state.now();
    let policy = state.policy.clone();
    let state_pii = state.pii.clone();
    let cid = citizen_id.to_owned();
    let serial_enc = state.pii.seal(PiiKind::Serial, &serial);
    let hash = state.pii.lookup(PiiKind::NationalId, national_id.as_str());
    let nid_enc = citizen.nid_enc.clone();
    let unchanged = info.clone();
    let pii_check = state.pii.clone();
    // A throw-away state view for apply_info (it only needs the PII keys).
    let apply = move |row: &mut ApplicationRow, now| {
        let helper = PiiOnly(state_pii.clone());
        helper.apply(row, &info, &inquiry, now);
    };
    // No transaction: the current application is read without a lock and written by one
    // all-or-nothing statement (`app_write`) — an edit checks the version read (`Stale`),
    // a new application the one per citizen and cycle (`Duplicate`); either way another
    // request got there first, and the loop reads again.
    state
        .run_api(move |conn| {
            super::retrying(|_| {
                let current = applications::current_for_citizen(conn, &cid)?;
                match current {
                    // Saving exactly what is stored (a retried request) changes nothing and
                    // costs no edit.
                    Some(row) if row.state != "cancelled" && same_info(&row, &unchanged, &pii_check) => {
                        Ok((row, false))
                    }
                    Some(mut row) if row.state != "cancelled" => {
                        let app = row.to_domain()?;
                        let next = transition(&app, Event::EditPersonalInfo { identity }, now, &policy)?;
                        row.set_domain(&next);
                        apply(&mut row, now);
                        let entry = audit::entry(
                            &actor,
                            "personal_info_edited",
                            Some(&row.id),
                            Some(serde_json::json!({"identity": identity.as_str()})),
                            now,
                        );
                        app_write::save(conn, &mut row, Along { audit: vec![entry], ..Along::default() }, now)?;
                        Ok((row, false))
                    }
                    previous => {
                        let cycle = previous.map_or(1, |p| p.cycle + 1);
                        let app = Application::new_draft(&policy, identity);
                        let mut row = blank_row(&cid, cycle, &hash, &nid_enc, &serial_enc, now);
                        row.set_domain(&app);
                        apply(&mut row, now);
                        row.created_by_client = (actor.kind == "kiosk").then(|| actor.id.clone()).flatten();
                        let entry = audit::entry(
                            &actor,
                            "application_created",
                            Some(&row.id),
                            Some(serde_json::json!({"identity": identity.as_str()})),
                            now,
                        );
                        app_write::create(conn, &row, &[entry])?;
                        Ok((row, true))
                    }
                }
            })
        })
        .await
}

/// Whether a row already holds exactly this personal information (and a settled identity).
fn same_info(row: &ApplicationRow, info: &PersonalInfo, pii: &persistence::Pii) -> bool {
    let Ok(p) = row.personal(pii) else { return false };
    row.identity_status != "rejected"
        && p.birth_date_jalali == info.birth_date.to_string()
        && p.birth_date_hijri == info.birth_date_hijri.to_string()
        && p.gender == info.gender.as_str()
        && p.religion == info.religion.as_str()
        && p.mother_name == info.mother_name.as_str()
        && pii.open(PiiKind::Mobile, &row.mobile_enc).ok().as_deref() == Some(info.mobile.as_str())
}

/// Writes personal fields with only the PII keys at hand (usable inside blocking closures).
struct PiiOnly(std::sync::Arc<persistence::Pii>);

impl PiiOnly {
    fn apply(&self, row: &mut ApplicationRow, info: &PersonalInfo, inquiry: &Inquiry, now: DateTime<Utc>) {
        // The registry's names of an earlier verification stay while a new inquiry is pending.
        let before =
            if row.personal_enc.is_empty() { Personal::default() } else { row.personal(&self.0).unwrap_or_default() };
        let mut personal = Personal {
            birth_date: info.birth_date.to_gregorian(),
            birth_date_jalali: info.birth_date.to_string(),
            birth_date_hijri: info.birth_date_hijri.to_string(),
            gender: info.gender.as_str().into(),
            religion: info.religion.as_str().into(),
            mother_name: info.mother_name.as_str().into(),
            first_name: before.first_name,
            last_name: before.last_name,
        };
        row.mobile_hash = self.0.lookup(PiiKind::Mobile, info.mobile.as_str());
        row.mobile_enc = self.0.seal(PiiKind::Mobile, info.mobile.as_str());
        match inquiry {
            Inquiry::Verified(record) => {
                personal.first_name = Some(record.first_name.as_str().into());
                personal.last_name = Some(record.last_name.as_str().into());
                row.identity_attempts = 0;
                row.identity_next_check_at = None;
                row.identity_pending_since = None;
            }
            Inquiry::Pending => {
                row.identity_attempts = 0;
                row.identity_next_check_at = Some((now + Duration::minutes(1)).naive_utc());
                row.identity_pending_since = Some(now.naive_utc());
            }
        }
        row.set_personal(&self.0, &personal);
    }
}

/// An application row with only its owner and identifiers set (the caller fills the rest).
pub(crate) fn blank_row(
    citizen_id: &CitizenId,
    cycle: i32,
    nid_hash: &str,
    nid_enc: &str,
    serial_enc: &str,
    now: DateTime<Utc>,
) -> ApplicationRow {
    ApplicationRow {
        id: persistence::new_id(),
        citizen_id: citizen_id.to_owned(),
        cycle,
        state: String::new(),
        identity_status: String::new(),
        payment_status: String::new(),
        appointment_status: String::new(),
        slot_office_id: None,
        slot_date: None,
        slot_shift: None,
        hold_expires_at: None,
        can_leave_home: None,
        can_climb_stairs: None,
        pupils_visible: None,
        fingers_intact: None,
        edits_left: 0,
        no_show_ban_until: None,
        tracking_code: None,
        paid_at: None,
        delivery_office_id: None,
        reissue_required: false,
        home_visit_address: false,
        reissue_reason: None,
        previous_application_id: None,
        nid_hash: nid_hash.to_owned(),
        nid_enc: nid_enc.to_owned(),
        serial_enc: serial_enc.to_owned(),
        personal_enc: String::new(),
        mobile_hash: String::new(),
        mobile_enc: String::new(),
        family_enc: None,
        identity_attempts: 0,
        identity_next_check_at: None,
        identity_pending_since: None,
        created_by_client: None,
        version: 0,
        created_at: now.naive_utc(),
        updated_at: now.naive_utc(),
        displaced_at: None,
        withdrawal_reason_enc: None,
    }
}

/// The four special-needs answers.
pub async fn answer_special_needs(
    state: &AppState,
    target: Target,
    needs: SpecialNeeds,
    actor: Actor,
) -> Result<ApplicationRow, ApiError> {
    let policy = state.policy.clone();
    // The application alone changes: read without a lock, saved with its entry in one
    // versioned statement.
    amend(state, target, move |row, app, now, entries| {
        let next = transition(app, Event::AnswerSpecialNeeds(needs), now, &policy)?;
        row.set_domain(&next);
        entries.push(audit::entry(
            &actor,
            "special_needs_answered",
            Some(&row.id),
            Some(serde_json::json!({"home_visit": needs.needs_home_visit()})),
            now,
        ));
        Ok(())
    })
    .await
    .map(|((), row)| row)
}

/// Validates family details: names normalised, national codes checked, dates valid.
pub fn validate_family(family: &Family) -> Result<Family, ApiError> {
    let mut errors = Vec::new();
    let mut out = family.clone();
    let mut name = |field: String, value: &mut String| match PersonName::parse(value) {
        Ok(n) => *value = n.as_str().to_owned(),
        Err(e) => errors.push((field, e)),
    };
    let mut members: Vec<(String, &mut crate::journey::view::FamilyMember)> = Vec::new();
    if let Some(f) = out.father.as_mut() {
        members.push(("father".into(), f));
    }
    if let Some(m) = out.mother.as_mut() {
        members.push(("mother".into(), m));
    }
    for (i, s) in out.spouses.iter_mut().enumerate() {
        members.push((format!("spouses[{i}]"), s));
    }
    let mut id_errors = Vec::new();
    for (path, m) in members {
        name(format!("{path}.first_name"), &mut m.first_name);
        name(format!("{path}.last_name"), &mut m.last_name);
        if let Some(id) = m.national_id.as_mut() {
            match NationalId::parse(id) {
                Ok(n) => *id = n.as_str().to_owned(),
                Err(e) => id_errors.push((format!("{path}.national_id"), e)),
            }
        }
    }
    for (i, c) in out.children.iter_mut().enumerate() {
        name(format!("children[{i}].first_name"), &mut c.first_name);
        name(format!("children[{i}].last_name"), &mut c.last_name);
        if let Some(id) = c.national_id.as_mut() {
            match NationalId::parse(id) {
                Ok(n) => *id = n.as_str().to_owned(),
                Err(e) => id_errors.push((format!("children[{i}].national_id"), e)),
            }
        }
        match JalaliDate::parse(&c.birth_date_jalali) {
            Ok(d) => c.birth_date_jalali = d.to_string(),
            Err(e) => id_errors.push((format!("children[{i}].birth_date_jalali"), e)),
        }
    }
    errors.extend(id_errors);
    if out.spouses.len() > 4 {
        errors.push(("spouses".into(), DomainError::NameInvalid));
    }
    if out.children.len() > 30 {
        errors.push(("children".into(), DomainError::NameInvalid));
    }
    let mut collected = FieldErrors::default();
    for (field, e) in errors {
        collected.push(field, e);
    }
    collected.finish().map(|()| out)
}

/// Father, mother, spouses and children (docs/domain/application.md); allowed until enrollment starts.
pub async fn save_family(
    state: &AppState,
    target: Target,
    family: Family,
    actor: Actor,
) -> Result<ApplicationRow, ApiError> {
    let family = validate_family(&family)?;
    let sealed = state.pii.seal(PiiKind::Family, &serde_json::to_string(&family).map_err(ApiError::internal)?);
    let policy = state.policy.clone();
    mutate(state, target, move |conn, row, app, now| {
        let next = transition(app, Event::EditFamily, now, &policy)?;
        row.set_domain(&next);
        row.family_enc = Some(sealed.clone());
        audit::append(conn, &actor, "family_saved", Some(&row.id), None, now)?;
        Ok(())
    })
    .await
    .map(|((), row)| row)
}

/// A new mobile; allowed to everyone who saved the first page (docs/domain/application.md).
pub async fn change_mobile(
    state: &AppState,
    target: Target,
    mobile: Mobile,
    actor: Actor,
) -> Result<ApplicationRow, ApiError> {
    let hash = state.pii.lookup(PiiKind::Mobile, mobile.as_str());
    let sealed = state.pii.seal(PiiKind::Mobile, mobile.as_str());
    let policy = state.policy.clone();
    mutate(state, target, move |conn, row, app, now| {
        let next = transition(app, Event::ChangeMobile, now, &policy)?;
        row.set_domain(&next);
        row.mobile_hash = hash.clone();
        row.mobile_enc = sealed.clone();
        audit::append(conn, &actor, "mobile_changed", Some(&row.id), None, now)?;
        Ok(())
    })
    .await
    .map(|((), row)| row)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journey::view::{Child, FamilyMember};

    #[test]
    fn family_national_codes_and_dates_are_checked_per_field() {
        let family = Family {
            father: Some(FamilyMember {
                first_name: "علي".into(),
                last_name: "احمدی".into(),
                national_id: Some("0499370899".into()),
            }),
            mother: None,
            spouses: vec![],
            children: vec![Child {
                first_name: "سارا".into(),
                last_name: "احمدی".into(),
                national_id: Some("1234567890".into()),
                birth_date_jalali: "1404-12-30".into(),
            }],
        };
        let Err(ApiError::Fields(errors)) = validate_family(&family) else { panic!("should fail") };
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["children[0].national_id", "children[0].birth_date_jalali"]);
        let mut ok = family.clone();
        ok.children[0].national_id = Some("۰۷۹۰۴۱۹۹۰۴".into());
        ok.children[0].birth_date_jalali = "1403-12-30".into();
        let cleaned = validate_family(&ok).unwrap();
        assert_eq!(cleaned.father.unwrap().first_name, "علی", "names are normalised");
        assert_eq!(cleaned.children[0].national_id.as_deref(), Some("0790419904"));
    }
}
