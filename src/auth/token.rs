//! Stateless access tokens: PASETO `v4.local` through `pasetors`.
//!
//! A token carries `sub` (the user id), `iat`, `nbf`, `exp`, `jti`, `iss` and `aud`;
//! checking one needs the key and the clock, never the database. `iat` and `nbf` are
//! backdated by [`CLOCK_LEEWAY`] because pasetors allows no skew: a replica whose clock
//! runs a little ahead would otherwise mint tokens the others reject as not yet valid.

use std::{path::Path, time::Duration};

use anyhow::Context as _;
use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, SecondsFormat, Utc};
use pasetors::{
    Local,
    claims::{Claims, ClaimsValidationRules},
    keys::{Generate, SymmetricKey},
    local,
    paserk::FormatAsPaserk,
    token::UntrustedToken,
    version4::V4,
};

use super::remembered::RememberedTokens;
use crate::{
    Error, Result,
    entity::ids::{RowId as _, UserId},
};

/// How far `iat` and `nbf` are backdated, to absorb clock skew between replicas.
pub const CLOCK_LEEWAY: Duration = Duration::from_secs(30);

/// The key and the rules for minting and checking access tokens.
pub struct TokenKeys {
    key: SymmetricKey<V4>,
    issuer: String,
    ttl: Duration,
    /// Tokens already checked, so that a client's every request does not check its
    /// token in full again.
    remembered: RememberedTokens,
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("key", &"[redacted]")
            .field("issuer", &self.issuer)
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// A freshly minted access token.
#[derive(Clone)]
pub struct AccessToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

/// What a valid access token proves: who, and until when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerifiedToken {
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken").field("expires_at", &self.expires_at).finish_non_exhaustive()
    }
}

impl TokenKeys {
    /// Keys from a PASERK `k4.local.` string.
    pub fn from_paserk(paserk: &str, issuer: impl Into<String>, ttl: Duration) -> anyhow::Result<Self> {
        let key = SymmetricKey::<V4>::try_from(paserk)
            .map_err(|_| anyhow::anyhow!("TRIAGE_TOKEN_KEY is not a PASERK k4.local key"))?;
        Ok(Self { key, issuer: issuer.into(), ttl, remembered: RememberedTokens::new() })
    }

    /// A new random key, as a PASERK `k4.local.` string.
    pub fn generate_paserk() -> anyhow::Result<String> {
        let key = SymmetricKey::<V4>::generate().context("generating a token key")?;
        let mut paserk = String::new();
        key.fmt(&mut paserk).context("formatting the token key")?;
        Ok(paserk)
    }

    /// Reads the key kept at `path`, or generates one there (mode 0600) on first run.
    pub fn load_or_create_paserk(path: &Path) -> anyhow::Result<String> {
        if path.exists() {
            let paserk = std::fs::read_to_string(path)
                .with_context(|| format!("reading the token key from {}", path.display()))?;
            return Ok(paserk.trim().to_owned());
        }
        let paserk = Self::generate_paserk()?;
        write_private(path, &paserk)
            .with_context(|| format!("writing the token key to {}", path.display()))?;
        tracing::warn!(
            path = %path.display(),
            "TRIAGE_TOKEN_KEY is not set: generated a token key and kept it beside the database; \
             set TRIAGE_TOKEN_KEY to share one key between replicas"
        );
        Ok(paserk)
    }

    /// Mints an access token for `user_id`, valid from `now` for the configured lifetime.
    pub fn issue(&self, user_id: UserId, now: DateTime<Utc>) -> Result<AccessToken> {
        let expires_at = now + self.ttl;
        let valid_from = now - CLOCK_LEEWAY;
        let mut claims = Claims::new().map_err(token_error)?;
        let jti = random_token_string::<16>()?;
        let rfc3339 = |at: DateTime<Utc>| at.to_rfc3339_opts(SecondsFormat::Secs, true);
        claims.subject(&user_id.to_string()).map_err(token_error)?;
        claims.issuer(&self.issuer).map_err(token_error)?;
        claims.audience(&self.issuer).map_err(token_error)?;
        claims.token_identifier(&jti).map_err(token_error)?;
        claims.issued_at(&rfc3339(valid_from)).map_err(token_error)?;
        claims.not_before(&rfc3339(valid_from)).map_err(token_error)?;
        claims.expiration(&rfc3339(expires_at)).map_err(token_error)?;
        let token = local::encrypt(&self.key, &claims, None, None).map_err(token_error)?;
        // `exp` has whole seconds; report the same instant the token holds.
        let expires_at = DateTime::parse_from_rfc3339(&rfc3339(expires_at))
            .map(|at| at.with_timezone(&Utc))
            .unwrap_or(expires_at);
        Ok(AccessToken { token, expires_at })
    }

    /// The user a valid token was issued to, and when it expires; `UNAUTHENTICATED`
    /// for a malformed, tampered, expired, not-yet-valid or foreign token. A token
    /// this process has checked before is answered from memory until it expires
    /// (see [`RememberedTokens`]).
    pub fn verify(&self, token: &str) -> Result<VerifiedToken> {
        if let Some(verified) = self.remembered.get(token, Utc::now()) {
            return Ok(verified);
        }
        let verified = self.verify_in_full(token)?;
        self.remembered.insert(token, verified);
        Ok(verified)
    }

    /// [`Self::verify`] without remembering: every token checked in full.
    pub fn verify_in_full(&self, token: &str) -> Result<VerifiedToken> {
        let rejected = || Error::Unauthenticated("The access token is invalid or expired");
        let untrusted = UntrustedToken::<Local, V4>::try_from(token).map_err(|_| rejected())?;
        let mut rules = ClaimsValidationRules::new();
        rules.validate_issuer_with(&self.issuer);
        rules.validate_audience_with(&self.issuer);
        let trusted = local::decrypt(&self.key, &untrusted, &rules, None, None).map_err(|_| rejected())?;
        let claims = trusted.payload_claims().ok_or_else(rejected)?;
        let claim = |name| claims.get_claim(name).and_then(|value| value.as_str());
        let user_id = claim("sub").and_then(UserId::parse).ok_or_else(rejected)?;
        let expires_at = claim("exp")
            .and_then(|exp| DateTime::parse_from_rfc3339(exp).ok())
            .map(|exp| exp.with_timezone(&Utc))
            .ok_or_else(rejected)?;
        Ok(VerifiedToken { user_id, expires_at })
    }
}

fn token_error(err: pasetors::errors::Error) -> Error {
    Error::internal(format!("minting an access token failed: {err}"))
}

/// The SHA-256 of a random token, hex: what is stored of refresh and invitation
/// tokens, which are never stored themselves.
pub fn digest(token: &str) -> String {
    use sha2::{Digest as _, Sha256};
    let hash = Sha256::digest(token.as_bytes());
    hash.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// `N` random bytes from the operating system, base64url without padding.
pub fn random_token_string<const N: usize>() -> Result<String> {
    let mut bytes = [0u8; N];
    getrandom(&mut bytes)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

fn getrandom(bytes: &mut [u8]) -> Result<()> {
    use argon2::password_hash::rand_core::{OsRng, RngCore as _};
    OsRng.try_fill_bytes(bytes).map_err(|err| Error::internal(format!("the OS random source failed: {err}")))
}

fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.write_all(b"\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> anyhow::Result<TokenKeys> {
        TokenKeys::from_paserk(&TokenKeys::generate_paserk()?, "triage", Duration::from_secs(900))
    }

    #[test]
    fn a_token_names_its_user() -> anyhow::Result<()> {
        let keys = keys()?;
        let token = keys.issue(UserId(42), Utc::now())?;
        assert!(token.token.starts_with("v4.local."));
        let verified = keys.verify(&token.token)?;
        assert_eq!(verified, VerifiedToken { user_id: UserId(42), expires_at: token.expires_at });
        Ok(())
    }

    #[test]
    fn expired_foreign_and_tampered_tokens_are_rejected() -> anyhow::Result<()> {
        let keys = keys()?;
        let expired = keys.issue(UserId(1), Utc::now() - chrono::Duration::hours(1))?;
        assert!(keys.verify(&expired.token).is_err());
        let foreign = self::keys()?.issue(UserId(1), Utc::now())?;
        assert!(keys.verify(&foreign.token).is_err());
        let mut tampered = keys.issue(UserId(1), Utc::now())?.token;
        let last = tampered.pop().map_or('A', |c| if c == 'A' { 'B' } else { 'A' });
        tampered.push(last);
        assert!(keys.verify(&tampered).is_err());
        assert!(keys.verify("not a token").is_err());
        Ok(())
    }

    #[test]
    fn a_checked_token_is_remembered_and_others_still_checked_in_full() -> anyhow::Result<()> {
        let keys = keys()?;
        let token = keys.issue(UserId(42), Utc::now())?;
        assert_eq!(keys.remembered.get(&token.token, Utc::now()), None);
        let verified = keys.verify(&token.token)?;
        assert_eq!(keys.remembered.get(&token.token, Utc::now()), Some(verified));
        assert_eq!(keys.verify(&token.token)?, verified);
        // A tampered copy of a remembered token is not it.
        let mut tampered = token.token.clone();
        let last = tampered.pop().map_or('A', |c| if c == 'A' { 'B' } else { 'A' });
        tampered.push(last);
        assert!(keys.verify(&tampered).is_err());
        assert_eq!(keys.remembered.get(&tampered, Utc::now()), None, "a rejected token is not remembered");
        Ok(())
    }

    #[test]
    fn other_issuers_are_rejected() -> anyhow::Result<()> {
        let paserk = TokenKeys::generate_paserk()?;
        let ours = TokenKeys::from_paserk(&paserk, "triage", Duration::from_secs(60))?;
        let theirs = TokenKeys::from_paserk(&paserk, "elsewhere", Duration::from_secs(60))?;
        let token = theirs.issue(UserId(1), Utc::now())?;
        assert!(ours.verify(&token.token).is_err());
        Ok(())
    }
}
