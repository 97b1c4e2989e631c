//! The national e-folder (کارپوشه ملی) self-registration rules (docs/domain/efolder.md).

use serde::{Deserialize, Serialize};

use crate::error::DomainError;
use crate::ids::{LegalId, Mobile, NationalId, PostalCode};
use crate::person::{Gender, PersonName};
use crate::ports::{Ownership, RegistryRecord};

/// docs/domain/efolder.md: the text shown when registration succeeded and the SMS was accepted.
pub const SUCCESS_MESSAGE_FA: &str = "ثبت نام شما در سامانه کارپوشه ملی ایرانیان با موفقیت انجام شد. نام کاربری و کلمه عبور طی 24 ساعت آینده برای شما پیامک خواهد شد.";
pub const SUCCESS_MESSAGE_EN: &str = "You are registered in the Iranian national e-folder. Your username and password will be sent to you by SMS within the next 24 hours.";
/// docs/domain/efolder.md: the heading shown with the credentials when no SMS could be sent.
pub const SUCCESS_SHOWN_MESSAGE_FA: &str = "ثبت نام در سامانه کارپوشه ملی ایرانیان با موفقیت انجام شد.";
pub const SUCCESS_SHOWN_MESSAGE_EN: &str = "You are registered in the Iranian national e-folder.";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonType {
    /// حقیقی — the default.
    #[default]
    Natural,
    /// حقوقی — registered by a representative.
    Legal,
}

impl PersonType {
    pub fn as_str(self) -> &'static str {
        match self {
            PersonType::Natural => "natural",
            PersonType::Legal => "legal",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [PersonType::Natural, PersonType::Legal].into_iter().find(|t| t.as_str() == s)
    }
}

/// The registration form, parsed. For a legal person `national_id` and the names are
/// the representative's, and `legal_id` is the organisation's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    pub person_type: PersonType,
    pub legal_id: Option<LegalId>,
    pub gender: Gender,
    pub national_id: NationalId,
    pub first_name: PersonName,
    pub last_name: PersonName,
    pub father_name: PersonName,
    pub mobile: Mobile,
    pub postal_code: PostalCode,
}

impl Registration {
    /// A legal person must name its legal ID; a natural person must not.
    pub fn check_shape(&self) -> Result<(), DomainError> {
        match (self.person_type, &self.legal_id) {
            (PersonType::Legal, None) => Err(DomainError::RepresentativeRequired),
            (PersonType::Natural, Some(_)) => Err(DomainError::LegalIdInvalid),
            _ => Ok(()),
        }
    }
}

/// The checks of docs/domain/efolder.md in their order: already registered; mobile not owned by this
/// national code (an unanswered inquiry is "try later", never "not yours"); the data
/// does not match the civil registry (names by their normalised key, father's name, gender).
pub fn check_registration(
    form: &Registration,
    already_registered: bool,
    ownership: Ownership,
    record: Option<&RegistryRecord>,
) -> Result<(), DomainError> {
    form.check_shape()?;
    if already_registered {
        return Err(DomainError::EfolderAlreadyRegistered);
    }
    match ownership {
        Ownership::Matched => {}
        Ownership::NotMatched => return Err(DomainError::MobileNotOwned),
        Ownership::Unavailable => return Err(DomainError::MobileCheckUnavailable),
    }
    let record = record.ok_or(DomainError::RegistryDataMismatch)?;
    let same = record.alive
        && record.first_name.matches(&form.first_name)
        && record.last_name.matches(&form.last_name)
        && record.father_name.matches(&form.father_name)
        && record.gender == form.gender;
    if same { Ok(()) } else { Err(DomainError::RegistryDataMismatch) }
}

/// The password policy: at least 10 characters, not the username, not the national code
/// (nor containing either).
pub fn check_new_password(password: &str, username: &str, national_id: &NationalId) -> Result<(), DomainError> {
    let lower = password.to_lowercase();
    if password.chars().count() < 10
        || password.chars().count() > 128
        || lower.contains(&username.to_lowercase())
        || crate::text::ascii_digits(password).contains(national_id.as_str())
    {
        return Err(DomainError::PasswordTooWeak);
    }
    Ok(())
}

/// The lock after the `failures`-th failed login in a row: none for the first four, then
/// 1, 2, 4, 8 … minutes, at most an hour.
pub fn login_lock(failures: i32) -> Option<chrono::Duration> {
    const FREE: i32 = 4;
    (failures > FREE).then(|| {
        crate::backoff::exponential(chrono::Duration::minutes(1), failures - FREE - 1, chrono::Duration::minutes(60))
    })
}

const USERNAME_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
const PASSWORD_ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";

/// A generated username: `kp` and eight characters without look-alikes (no 0/o, 1/l/i).
pub fn generate_username(random: &dyn crate::ports::RandomSource) -> String {
    format!("kp{}", random_string(random, USERNAME_ALPHABET, 8))
}

/// A password-reset code: six digits, each equally likely.
pub fn generate_reset_code(random: &dyn crate::ports::RandomSource) -> String {
    random_string(random, b"0123456789", 6)
}

/// A generated password: 14 characters from 56 symbols (≈ 81 bits).
pub fn generate_password(random: &dyn crate::ports::RandomSource) -> String {
    random_string(random, PASSWORD_ALPHABET, 14)
}

fn random_string(random: &dyn crate::ports::RandomSource, alphabet: &[u8], len: usize) -> String {
    // Rejection sampling keeps every symbol equally likely.
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let mut b = [0u8; 1];
        random.fill_bytes(&mut b);
        if usize::from(b[0]) < limit {
            out.push(char::from(alphabet[usize::from(b[0]) % alphabet.len()]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::JalaliDate;
    use std::sync::atomic::{AtomicU64, Ordering};

    fn record() -> RegistryRecord {
        RegistryRecord {
            national_id: NationalId::parse("2580200606").unwrap(),
            serial: "883810".into(),
            first_name: PersonName::parse("مریم").unwrap(),
            last_name: PersonName::parse("احمدی").unwrap(),
            father_name: PersonName::parse("علی").unwrap(),
            mother_name: PersonName::parse("شهرزاد").unwrap(),
            gender: Gender::Female,
            birth_date: JalaliDate::parse("1369-03-19").unwrap(),
            alive: true,
            serial_changed_at: None,
        }
    }

    fn form() -> Registration {
        Registration {
            person_type: PersonType::Natural,
            legal_id: None,
            gender: Gender::Female,
            national_id: NationalId::parse("2580200606").unwrap(),
            first_name: PersonName::parse("مريم").unwrap(),
            last_name: PersonName::parse("احمدي").unwrap(),
            father_name: PersonName::parse("علي").unwrap(),
            mobile: Mobile::parse("09145128136").unwrap(),
            postal_code: PostalCode::parse("5518743111").unwrap(),
        }
    }

    #[test]
    fn checks_run_in_the_seed_order() {
        let r = record();
        assert_eq!(
            check_registration(&form(), false, Ownership::Matched, Some(&r)),
            Ok(()),
            "Arabic Yeh matches Persian Yeh"
        );
        assert_eq!(
            check_registration(&form(), true, Ownership::NotMatched, None),
            Err(DomainError::EfolderAlreadyRegistered)
        );
        assert_eq!(check_registration(&form(), false, Ownership::NotMatched, None), Err(DomainError::MobileNotOwned));
        assert_eq!(
            check_registration(&form(), false, Ownership::Unavailable, Some(&r)),
            Err(DomainError::MobileCheckUnavailable),
            "an outage is never 'not your number'"
        );
        let mut wrong_father = form();
        wrong_father.father_name = PersonName::parse("حسن").unwrap();
        assert_eq!(
            check_registration(&wrong_father, false, Ownership::Matched, Some(&r)),
            Err(DomainError::RegistryDataMismatch)
        );
        let mut wrong_gender = form();
        wrong_gender.gender = Gender::Male;
        assert_eq!(
            check_registration(&wrong_gender, false, Ownership::Matched, Some(&r)),
            Err(DomainError::RegistryDataMismatch)
        );
        assert_eq!(
            check_registration(&form(), false, Ownership::Matched, None),
            Err(DomainError::RegistryDataMismatch)
        );
    }

    #[test]
    fn legal_persons_need_a_legal_id() {
        let mut f = form();
        f.person_type = PersonType::Legal;
        assert_eq!(f.check_shape(), Err(DomainError::RepresentativeRequired));
        f.legal_id = Some(LegalId::parse("10380284790").unwrap());
        assert_eq!(f.check_shape(), Ok(()));
    }

    #[test]
    fn password_policy() {
        let id = NationalId::parse("2580200606").unwrap();
        assert!(check_new_password("short", "kpabc", &id).is_err());
        assert!(check_new_password("kpabcdefgh-x", "kpabcdefgh", &id).is_err());
        assert!(check_new_password("my2580200606", "kpx", &id).is_err());
        assert!(check_new_password("my۲۵۸۰۲۰۰۶۰۶", "kpx", &id).is_err());
        assert!(check_new_password("correct horse battery", "kpx", &id).is_ok());
    }

    struct Counter(AtomicU64);
    impl crate::ports::RandomSource for Counter {
        fn next_u64(&self) -> u64 {
            self.0.fetch_add(1, Ordering::Relaxed)
        }
        fn fill_bytes(&self, buf: &mut [u8]) {
            for b in buf {
                *b = self.next_u64() as u8;
            }
        }
    }

    #[test]
    fn the_login_lock_grows_with_each_failure_and_is_capped() {
        use chrono::Duration;
        assert_eq!(login_lock(4), None);
        assert_eq!(login_lock(5), Some(Duration::minutes(1)));
        assert_eq!(login_lock(6), Some(Duration::minutes(2)));
        assert_eq!(login_lock(8), Some(Duration::minutes(8)));
        assert_eq!(login_lock(50), Some(Duration::minutes(60)));
    }

    #[test]
    fn person_types_round_trip_their_names() {
        for t in [PersonType::Natural, PersonType::Legal] {
            assert_eq!(PersonType::parse(t.as_str()), Some(t));
        }
        assert_eq!(PersonType::parse("other"), None);
    }

    #[test]
    fn generated_credentials_have_the_promised_shape() {
        let r = Counter(AtomicU64::new(0));
        let u = generate_username(&r);
        assert!(u.starts_with("kp") && u.len() == 10);
        let p = generate_password(&r);
        assert_eq!(p.len(), 14);
        assert!(p.bytes().all(|b| PASSWORD_ALPHABET.contains(&b)));
        let code = generate_reset_code(&r);
        assert!(code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit()), "{code}");
    }

    /// Bytes from a script, in order.
    struct Scripted(std::sync::Mutex<Vec<u8>>);
    impl crate::ports::RandomSource for Scripted {
        fn next_u64(&self) -> u64 {
            unreachable!("random_string draws bytes")
        }
        fn fill_bytes(&self, buf: &mut [u8]) {
            let mut left = self.0.lock().unwrap();
            for b in buf {
                *b = left.remove(0);
            }
        }
    }

    /// Every digit of a reset code equally likely: a byte in the uneven tail (250–255 for
    /// ten digits) is thrown away, the rest map by remainder.
    #[test]
    fn reset_codes_reject_the_uneven_tail_of_a_byte() {
        let r = Scripted(std::sync::Mutex::new(vec![255, 250, 249, 0, 13, 100, 77, 5, 42]));
        assert_eq!(generate_reset_code(&r), "903075");
        let r = Scripted(std::sync::Mutex::new(vec![247, 248, 0, 1, 2, 30, 31, 62, 200]));
        // 31 symbols: 256 - 256 % 31 = 248, so 247 is the last byte kept and 248 the first dropped.
        assert_eq!(generate_username(&r), "kp9abc9aar");
    }

    #[test]
    fn a_natural_person_gives_no_legal_id() {
        let mut f = form();
        f.legal_id = Some(LegalId::parse("10380284790").unwrap());
        assert_eq!(f.check_shape(), Err(DomainError::LegalIdInvalid));
    }

    /// 10 to 128 characters, both ends included.
    #[test]
    fn password_length_bounds() {
        let id = NationalId::parse("2580200606").unwrap();
        assert_eq!(check_new_password(&"a".repeat(9), "kpx", &id), Err(DomainError::PasswordTooWeak));
        assert_eq!(check_new_password(&"a".repeat(10), "kpx", &id), Ok(()));
        assert_eq!(check_new_password(&"a".repeat(128), "kpx", &id), Ok(()));
        assert_eq!(check_new_password(&"a".repeat(129), "kpx", &id), Err(DomainError::PasswordTooWeak));
    }
}
