//! Web visits: the UTM parameters, click ids and referrer of the page a chat was opened from,
//! the platform they point to, widget keys with their origin allow-lists, and the short ref
//! codes that carry a visit into the WhatsApp conversation it starts.

pub mod store;

use crate::fields::{FieldError, cap_bytes};
use crate::ids::{ContactId, InstanceId};
use crate::secret::Secret;
use crate::time::Timestamp;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Longest page URL or referrer accepted, in bytes.
pub const MAX_URL_BYTES: usize = 8 * 1024;
/// Longest page URL or referrer stored, in bytes of its serialised form: re-serialising
/// percent-encodes, so the stored form can be longer than what was sent, and this is what
/// bounds it.
pub const MAX_STORED_URL_BYTES: usize = 2 * 1024;
/// Longest value kept of one UTM parameter or click id, in bytes of UTF-8 (control characters
/// dropped, so that no encoding of it grows beyond twice this).
pub const MAX_PARAM_BYTES: usize = 500;
/// Web contacts are keyed `web:<visitor_id>`. Meta's ids are digits (phone numbers, PSIDs,
/// IGSIDs) or business-scoped ids (`BR.1502576394655843`, `US.ENT.…`): none holds a `:`, so no
/// visitor id can name a contact of another channel.
pub const WEB_CONTACT_PREFIX: &str = "web:";
/// Longest visitor id, in characters (the snippet makes 33).
pub const MAX_VISITOR_ID_CHARS: usize = 64;

/// The web contact a browser's `visitor_id` stands for: letters, digits, `-` and `_`, at most
/// [`MAX_VISITOR_ID_CHARS`], under [`WEB_CONTACT_PREFIX`].
pub fn web_contact_id(visitor_id: &str) -> Result<ContactId, FieldError> {
    let shaped = (1..=MAX_VISITOR_ID_CHARS).contains(&visitor_id.len())
        && visitor_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let refused = || {
        FieldError::new(
            "visitor_id",
            format!("must be 1 to {MAX_VISITOR_ID_CHARS} letters, digits, '-' or '_'"),
        )
    };
    if !shaped {
        return Err(refused());
    }
    ContactId::parse(&format!("{WEB_CONTACT_PREFIX}{visitor_id}")).map_err(|_| refused())
}

/// The platforms a web visit can name: a fixed list, so that what a page URL says never
/// becomes a counter or a stats row of its own. Anything unrecognised is `other` (its raw
/// `utm_source` or referrer stays in the visit). Stored visits with a name outside the list
/// read back as `other`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebPlatform {
    /// Google search or ads.
    Google,
    /// Facebook.
    Facebook,
    /// Instagram.
    Instagram,
    /// TikTok.
    Tiktok,
    /// X (Twitter).
    Twitter,
    /// LinkedIn.
    Linkedin,
    /// YouTube.
    Youtube,
    /// Snapchat.
    Snapchat,
    /// Pinterest.
    Pinterest,
    /// Microsoft (Bing) search or ads.
    Microsoft,
    /// Reddit.
    Reddit,
    /// WhatsApp.
    Whatsapp,
    /// An email campaign.
    Email,
    /// An SMS campaign.
    Sms,
    /// Nothing in the URL and no outside referrer: typed in or bookmarked.
    Direct,
    /// Any other source, and any name this version does not know.
    #[serde(other)]
    Other,
}

impl WebPlatform {
    /// Every platform, as the API names them.
    pub const ALL: [WebPlatform; 16] = [
        Self::Google,
        Self::Facebook,
        Self::Instagram,
        Self::Tiktok,
        Self::Twitter,
        Self::Linkedin,
        Self::Youtube,
        Self::Snapchat,
        Self::Pinterest,
        Self::Microsoft,
        Self::Reddit,
        Self::Whatsapp,
        Self::Email,
        Self::Sms,
        Self::Direct,
        Self::Other,
    ];

    /// The platform's name in counters, filters and the API.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Google => "google",
            Self::Facebook => "facebook",
            Self::Instagram => "instagram",
            Self::Tiktok => "tiktok",
            Self::Twitter => "twitter",
            Self::Linkedin => "linkedin",
            Self::Youtube => "youtube",
            Self::Snapchat => "snapchat",
            Self::Pinterest => "pinterest",
            Self::Microsoft => "microsoft",
            Self::Reddit => "reddit",
            Self::Whatsapp => "whatsapp",
            Self::Email => "email",
            Self::Sms => "sms",
            Self::Direct => "direct",
            Self::Other => "other",
        }
    }

    /// The platform a `utm_source` names, in any of its common spellings (case, spaces,
    /// dashes and dots ignored: `Google Ads`, `google-ads`, `facebook.com`), or `None`.
    pub fn from_source(source: &str) -> Option<Self> {
        let squeezed: String = source
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .map(|c| c.to_ascii_lowercase())
            .collect();
        let spellings: [(&[&str], Self); 14] = [
            (
                &[
                    "google",
                    "googleads",
                    "adwords",
                    "googleadwords",
                    "gads",
                    "googlecom",
                ],
                Self::Google,
            ),
            (
                &[
                    "facebook",
                    "fb",
                    "meta",
                    "facebookads",
                    "fbads",
                    "metaads",
                    "facebookcom",
                ],
                Self::Facebook,
            ),
            (
                &["instagram", "ig", "insta", "instagramcom"],
                Self::Instagram,
            ),
            (&["tiktok", "tiktokads", "tiktokcom"], Self::Tiktok),
            (
                &["twitter", "x", "tco", "twittercom", "xcom"],
                Self::Twitter,
            ),
            (
                &["linkedin", "lnkd", "linkedinads", "linkedincom"],
                Self::Linkedin,
            ),
            (&["youtube", "yt", "youtubecom"], Self::Youtube),
            (&["snapchat", "snap", "snapchatads"], Self::Snapchat),
            (&["pinterest", "pinterestcom"], Self::Pinterest),
            (
                &[
                    "bing",
                    "microsoft",
                    "msn",
                    "bingads",
                    "microsoftads",
                    "bingcom",
                ],
                Self::Microsoft,
            ),
            (&["reddit", "redditcom"], Self::Reddit),
            (&["whatsapp", "wame"], Self::Whatsapp),
            (
                &[
                    "email",
                    "newsletter",
                    "mail",
                    "mailchimp",
                    "klaviyo",
                    "emailmarketing",
                ],
                Self::Email,
            ),
            (&["sms", "textmessage"], Self::Sms),
        ];
        spellings
            .iter()
            .find(|(names, _)| names.contains(&squeezed.as_str()))
            .map(|(_, platform)| *platform)
    }

    /// The platform a referring host belongs to (`www.`, subdomains and country domains
    /// included: `l.facebook.com`, `google.co.uk`), or `None`.
    pub fn from_host(host: &str) -> Option<Self> {
        let host = host.to_ascii_lowercase();
        let labels = format!(".{}", host.trim_end_matches('.'));
        // A pattern ending in `.` names a registrable label under any suffix (`google.`).
        let known = [
            ("google.", Self::Google),
            ("youtube.", Self::Youtube),
            ("youtu.be", Self::Youtube),
            ("facebook.com", Self::Facebook),
            ("fb.com", Self::Facebook),
            ("fb.me", Self::Facebook),
            ("instagram.com", Self::Instagram),
            ("t.co", Self::Twitter),
            ("twitter.com", Self::Twitter),
            ("x.com", Self::Twitter),
            ("linkedin.com", Self::Linkedin),
            ("lnkd.in", Self::Linkedin),
            ("tiktok.com", Self::Tiktok),
            ("bing.com", Self::Microsoft),
            ("msn.com", Self::Microsoft),
            ("pinterest.", Self::Pinterest),
            ("snapchat.com", Self::Snapchat),
            ("reddit.com", Self::Reddit),
            ("wa.me", Self::Whatsapp),
            ("whatsapp.com", Self::Whatsapp),
        ];
        known
            .iter()
            .find(|(pattern, _)| {
                if pattern.ends_with('.') {
                    labels.contains(&format!(".{pattern}"))
                } else {
                    labels.ends_with(&format!(".{pattern}"))
                }
            })
            .map(|(_, platform)| *platform)
    }
}

/// The page URL's `utm_*` parameters, each capped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Utm {
    /// `utm_source`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `utm_medium`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<String>,
    /// `utm_campaign`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign: Option<String>,
    /// `utm_term`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<String>,
    /// `utm_content`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
}

/// Ad networks' click ids found in the page URL, each capped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClickIds {
    /// Google Ads.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gclid: Option<String>,
    /// Meta (Facebook, Instagram).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbclid: Option<String>,
    /// Google Ads on iOS, for app conversions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gbraid: Option<String>,
    /// Google Ads on iOS, for web conversions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wbraid: Option<String>,
    /// TikTok.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttclid: Option<String>,
    /// Microsoft Advertising.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub msclkid: Option<String>,
    /// LinkedIn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub li_fat_id: Option<String>,
}

impl ClickIds {
    /// Every click id, in the order the CSV export picks the visit's first one: gclid, gbraid,
    /// wbraid, fbclid, ttclid, msclkid, li_fat_id.
    pub fn in_order(&self) -> [&Option<String>; 7] {
        [
            &self.gclid,
            &self.gbraid,
            &self.wbraid,
            &self.fbclid,
            &self.ttclid,
            &self.msclkid,
            &self.li_fat_id,
        ]
    }

    /// The ad platform the first present click id belongs to.
    fn platform(&self) -> Option<WebPlatform> {
        [
            (&self.gclid, WebPlatform::Google),
            (&self.gbraid, WebPlatform::Google),
            (&self.wbraid, WebPlatform::Google),
            (&self.fbclid, WebPlatform::Facebook),
            (&self.ttclid, WebPlatform::Tiktok),
            (&self.msclkid, WebPlatform::Microsoft),
            (&self.li_fat_id, WebPlatform::Linkedin),
        ]
        .into_iter()
        .find_map(|(id, platform)| id.is_some().then_some(platform))
    }
}

/// Where a web visitor came from: a web contact's acquisition, also what a ref code carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebVisit {
    /// The source the visit came from.
    pub platform: WebPlatform,
    /// The page URL's UTM parameters.
    pub utm: Utm,
    /// The page URL's ad click ids.
    pub click_ids: ClickIds,
    /// The page the widget ran on, capped.
    pub page_url: String,
    /// The page's referrer, when the browser sent one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    /// `wa.me` when the visit reached WhatsApp through a ref code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<String>,
    /// The ref code the visit was given, to carry it into WhatsApp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ref_code: Option<String>,
    /// The `utm_campaign` the visit counts under in the ads report: set by the widget function
    /// only when the widget's admin-made `campaigns` list holds it, so the campaign counters
    /// never grow with what a page URL says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_campaign: Option<String>,
    /// When the widget reported the visit.
    pub captured_at: Timestamp,
}

fn parse_url(field: &'static str, text: &str) -> Result<url::Url, FieldError> {
    if text.len() > MAX_URL_BYTES {
        return Err(FieldError::new(
            field,
            format!("must be at most {MAX_URL_BYTES} bytes"),
        ));
    }
    let url = url::Url::parse(text.trim())
        .map_err(|error| FieldError::new(field, format!("is not a URL: {error}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(FieldError::new(field, "must be an http or https URL"));
    }
    Ok(url)
}

/// The first value of each parameter in the query (never the fragment), percent-decoded
/// (invalid UTF-8 becomes U+FFFD), without control characters, trimmed, and capped; empty
/// values count as absent.
fn first_values(url: &url::Url) -> impl Fn(&str) -> Option<String> + '_ {
    move |name: &str| {
        url.query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| {
                let visible: String = value.chars().filter(|c| !c.is_control()).collect();
                cap_bytes(visible.trim(), MAX_PARAM_BYTES)
                    .trim_end()
                    .to_owned()
            })
            .filter(|value| !value.is_empty())
    }
}

/// A URL as stored: its serialised form, cut to [`MAX_STORED_URL_BYTES`].
fn stored_url(url: &url::Url) -> String {
    cap_bytes(url.as_str(), MAX_STORED_URL_BYTES).to_owned()
}

impl WebVisit {
    /// Reads a visit from the page URL and the referrer. The platform comes from a click id,
    /// else `utm_source` (a known one, else `other`), else the referrer's host (a known one,
    /// else `other`; a referrer on the page's own host is navigation, not a source), else
    /// `direct`.
    pub fn from_page(
        page_url: &str,
        referrer: Option<&str>,
        captured_at: Timestamp,
    ) -> Result<Self, FieldError> {
        let page = parse_url("page_url", page_url)?;
        let referrer = referrer
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| parse_url("referrer", r))
            .transpose()?;
        let param = first_values(&page);
        let utm = Utm {
            source: param("utm_source"),
            medium: param("utm_medium"),
            campaign: param("utm_campaign"),
            term: param("utm_term"),
            content: param("utm_content"),
        };
        let click_ids = ClickIds {
            gclid: param("gclid"),
            fbclid: param("fbclid"),
            gbraid: param("gbraid"),
            wbraid: param("wbraid"),
            ttclid: param("ttclid"),
            msclkid: param("msclkid"),
            li_fat_id: param("li_fat_id"),
        };
        let external_referrer = referrer
            .as_ref()
            .and_then(|r| r.host_str())
            .filter(|host| Some(*host) != page.host_str());
        let platform = click_ids
            .platform()
            .or_else(|| {
                let source = utm.source.as_deref()?;
                Some(WebPlatform::from_source(source).unwrap_or(WebPlatform::Other))
            })
            .or_else(|| {
                let host = external_referrer?;
                Some(WebPlatform::from_host(host).unwrap_or(WebPlatform::Other))
            })
            .unwrap_or(WebPlatform::Direct);
        Ok(Self {
            platform,
            utm,
            click_ids,
            page_url: stored_url(&page),
            referrer: referrer.as_ref().map(stored_url),
            via: None,
            ref_code: None,
            counted_campaign: None,
            captured_at,
        })
    }
}

/// A widget's configuration: its publishable key and the origins allowed to use it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WidgetConfig {
    /// The instance the widget belongs to.
    pub instance_id: InstanceId,
    /// The key the widget script sends with each visit; rotating it makes a new one.
    pub widget_key: String,
    /// The site origins whose pages may use the key.
    pub allowed_origins: Vec<String>,
    /// The `utm_campaign` names whose visits count as conversations in the ads report (admin
    /// set); a visit with any other campaign is stored and shown, not counted.
    #[serde(default)]
    pub campaigns: Vec<String>,
    /// When the configuration last changed.
    pub updated_at: Timestamp,
}

/// Most origins one widget may allow.
pub const MAX_ORIGINS: usize = 50;
/// Most campaigns one widget may count: each can add a counter to a day's counters item.
pub const MAX_CAMPAIGNS: usize = 100;
/// Longest counted campaign name, in characters.
pub const MAX_CAMPAIGN_CHARS: usize = 100;

impl WidgetConfig {
    /// A new key for `allowed_origins` (`https://shop.example`, scheme and host and port, no
    /// path), normalised to lower case without a trailing slash.
    pub fn new(
        instance_id: InstanceId,
        allowed_origins: &[String],
        now: Timestamp,
    ) -> Result<Self, FieldError> {
        if allowed_origins.is_empty() || allowed_origins.len() > MAX_ORIGINS {
            return Err(FieldError::new(
                "allowed_origins",
                format!("must list 1 to {MAX_ORIGINS} origins"),
            ));
        }
        let mut origins = Vec::with_capacity(allowed_origins.len());
        for origin in allowed_origins {
            let field = "allowed_origins";
            let url = url::Url::parse(origin.trim())
                .map_err(|_| FieldError::new(field, format!("{origin:?} is not an origin")))?;
            let bare =
                matches!(url.path(), "" | "/") && url.query().is_none() && url.fragment().is_none();
            if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() || !bare {
                return Err(FieldError::new(
                    field,
                    format!("{origin:?} must be an origin such as https://shop.example (no path)"),
                ));
            }
            let normal = url.origin().ascii_serialization();
            if !origins.contains(&normal) {
                origins.push(normal);
            }
        }
        let key: String = (0..24)
            .map(|_| char::from(ALPHANUMERIC[rand::rng().random_range(0..ALPHANUMERIC.len())]))
            .collect();
        Ok(Self {
            instance_id,
            widget_key: format!("wk_{key}"),
            allowed_origins: origins,
            campaigns: Vec::new(),
            updated_at: now,
        })
    }

    /// The configuration counting visits of `campaigns` (each trimmed, 1 to
    /// [`MAX_CAMPAIGN_CHARS`] characters without control characters, at most
    /// [`MAX_CAMPAIGNS`] distinct ones); the first bad one is refused by its index.
    pub fn with_campaigns(mut self, campaigns: &[String]) -> Result<Self, FieldError> {
        let mut kept: Vec<String> = Vec::with_capacity(campaigns.len());
        for (index, campaign) in campaigns.iter().enumerate() {
            let name = campaign.trim();
            let chars = name.chars().count();
            if !(1..=MAX_CAMPAIGN_CHARS).contains(&chars) || name.chars().any(char::is_control) {
                return Err(FieldError::new(
                    format!("campaigns[{index}]"),
                    format!(
                        "must be 1 to {MAX_CAMPAIGN_CHARS} characters without control characters"
                    ),
                ));
            }
            if !kept.iter().any(|known| known == name) {
                kept.push(name.to_owned());
            }
        }
        if kept.len() > MAX_CAMPAIGNS {
            return Err(FieldError::new(
                "campaigns",
                format!("must list at most {MAX_CAMPAIGNS} campaigns"),
            ));
        }
        self.campaigns = kept;
        Ok(self)
    }

    /// `visit` marked with the campaign it counts under: its `utm_campaign` when this widget's
    /// list holds it exactly (both sides trimmed), else none.
    pub fn mark_counted(&self, mut visit: WebVisit) -> WebVisit {
        visit.counted_campaign = visit
            .utm
            .campaign
            .as_deref()
            .map(str::trim)
            .filter(|campaign| self.campaigns.iter().any(|listed| listed == campaign))
            .map(str::to_owned);
        visit
    }

    /// Whether a browser request from `origin` carrying `key` may use this widget. The key is
    /// publishable, so the origin is what protects it; both are checked, the key in constant time.
    pub fn admits(&self, origin: Option<&str>, key: Option<&[u8]>) -> bool {
        let key_matches = key.is_some_and(|key| Secret::new(self.widget_key.clone()).matches(key));
        key_matches && origin.is_some_and(|origin| self.allows_origin(origin))
    }

    /// Whether a page of `origin` may use the widget.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin.trim_end_matches('/')))
    }
}

const ALPHANUMERIC: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const REF_ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// 8 characters of base 36: about 41 bits, checked against one instance and expiring.
pub const REF_CODE_LEN: usize = 8;
/// How long a ref code waits for its WhatsApp message: 30 days.
pub const REF_TTL_SECONDS: i64 = 30 * 24 * 60 * 60;

/// A visit waiting to be carried into WhatsApp by its code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefCode {
    /// The code the visitor sends in their first WhatsApp message.
    pub code: String,
    /// The instance the code was made for.
    pub instance_id: InstanceId,
    /// The browser's visitor id.
    pub visitor_id: String,
    /// The visit it carries.
    pub visit: WebVisit,
    /// When the code stops being accepted.
    pub expires_at: Timestamp,
}

impl RefCode {
    /// A fresh random code for `visit`, expiring `REF_TTL_SECONDS` after `now`.
    pub fn new(
        instance_id: InstanceId,
        visitor_id: String,
        visit: WebVisit,
        now: Timestamp,
    ) -> Self {
        let code = (0..REF_CODE_LEN)
            .map(|_| char::from(REF_ALPHABET[rand::rng().random_range(0..REF_ALPHABET.len())]))
            .collect();
        Self {
            code,
            instance_id,
            visitor_id,
            visit,
            expires_at: now.plus_seconds(REF_TTL_SECONDS),
        }
    }

    /// What the site appends to its pre-filled WhatsApp text.
    pub fn text_suffix(&self) -> String {
        format!(" [ref:{}]", self.code)
    }

    /// Whether this code can attribute a contact of `instance_id` at `now`.
    pub fn applies(&self, instance_id: &InstanceId, now: Timestamp) -> bool {
        &self.instance_id == instance_id && now <= self.expires_at
    }

    /// The acquisition of a WhatsApp contact that arrived through this code.
    pub fn acquisition_visit(&self) -> WebVisit {
        WebVisit {
            via: Some("wa.me".to_owned()),
            ref_code: Some(self.code.clone()),
            ..self.visit.clone()
        }
    }
}

/// Where a ref code token (`[ref:k3x9q2ab]`) of the right shape sits in `text`, and its code.
fn ref_token(text: &str) -> Option<(std::ops::Range<usize>, &str)> {
    let open = text.find("[ref:")?;
    let start = open + "[ref:".len();
    let end = start + text[start..].find(']')?;
    let code = text[start..end].trim();
    let shaped = code.len() == REF_CODE_LEN
        && code
            .bytes()
            .all(|b| REF_ALPHABET.contains(&b.to_ascii_lowercase()));
    shaped.then_some((open..end + 1, code))
}

/// The ref code in a first message (`… [ref:k3x9q2ab]`), if it holds one of the right shape.
pub fn ref_code_in(text: &str) -> Option<&str> {
    ref_token(text).map(|(_, code)| code)
}

/// The text without its ref code token: what the site's pre-filled message said, which is what
/// text rules are written against (an `exact` rule must not fail because of the suffix).
pub fn without_ref_code(text: &str) -> std::borrow::Cow<'_, str> {
    match ref_token(text) {
        Some((token, _)) => {
            let mut kept = String::with_capacity(text.len());
            kept.push_str(text[..token.start].trim_end());
            let after = text[token.end..].trim_start();
            if !kept.is_empty() && !after.is_empty() {
                kept.push(' ');
            }
            kept.push_str(after);
            std::borrow::Cow::Owned(kept)
        }
        None => std::borrow::Cow::Borrowed(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> Timestamp {
        Timestamp::from_unix_seconds(1_790_000_000).unwrap()
    }

    fn visit(page: &str, referrer: Option<&str>) -> WebVisit {
        WebVisit::from_page(page, referrer, now()).unwrap()
    }

    #[test]
    fn utms_are_percent_decoded_first_wins_and_empty_is_absent() {
        let v = visit(
            "https://shop.example/p?utm_source=News%20Letter&utm_source=other&utm_medium=&utm_campaign=spring+sale&utm_term=caf%C3%A9#utm_content=frag",
            None,
        );
        assert_eq!(v.utm.source.as_deref(), Some("News Letter"));
        assert_eq!(v.utm.medium, None);
        assert_eq!(v.utm.campaign.as_deref(), Some("spring sale"));
        assert_eq!(v.utm.term.as_deref(), Some("café"));
        assert_eq!(v.utm.content, None, "the fragment is not the query");
        assert_eq!(
            v.platform,
            WebPlatform::Email,
            "a known source, in any spelling"
        );
    }

    #[test]
    fn invalid_utf8_and_long_values_are_made_safe() {
        let v = visit("https://shop.example/?utm_campaign=%FF%FEabc&gclid=", None);
        assert_eq!(v.utm.campaign.as_deref(), Some("\u{FFFD}\u{FFFD}abc"));
        assert_eq!(v.click_ids.gclid, None);
        let long = format!("https://shop.example/?utm_term={}", "x".repeat(2_000));
        assert_eq!(visit(&long, None).utm.term.unwrap().len(), 500);
        let too_long = format!("https://shop.example/?q={}", "x".repeat(MAX_URL_BYTES));
        assert_eq!(
            WebVisit::from_page(&too_long, None, now())
                .unwrap_err()
                .field,
            "page_url"
        );
        for bad in ["not a url", "javascript:alert(1)", "ftp://x.example/", ""] {
            assert_eq!(
                WebVisit::from_page(bad, None, now()).unwrap_err().field,
                "page_url",
                "{bad}"
            );
        }
        assert_eq!(
            WebVisit::from_page("https://a.example/", Some("nope"), now())
                .unwrap_err()
                .field,
            "referrer"
        );
    }

    #[test]
    fn the_platform_comes_from_click_ids_then_utm_source_then_referrer_then_direct() {
        let cases = [
            (
                "https://s.example/?gclid=1&fbclid=2&utm_source=fb",
                None,
                "google",
            ),
            ("https://s.example/?wbraid=1", None, "google"),
            (
                "https://s.example/?fbclid=2&utm_source=newsletter",
                None,
                "facebook",
            ),
            ("https://s.example/?ttclid=3", None, "tiktok"),
            ("https://s.example/?msclkid=4", None, "microsoft"),
            ("https://s.example/?li_fat_id=5", None, "linkedin"),
            (
                "https://s.example/?utm_source=Newsletter",
                Some("https://www.google.com/"),
                "email",
            ),
            (
                "https://s.example/",
                Some("https://www.google.co.uk/search"),
                "google",
            ),
            (
                "https://s.example/",
                Some("https://l.facebook.com/l.php"),
                "facebook",
            ),
            ("https://s.example/", Some("https://t.co/abc"), "twitter"),
            (
                "https://s.example/",
                Some("https://blog.example.org/post"),
                "other",
            ),
            (
                "https://s.example/?utm_source=Partner%20Blog",
                None,
                "other",
            ),
            ("https://s.example/?utm_source=IG", None, "instagram"),
            ("https://s.example/?utm_source=Google-Ads", None, "google"),
            (
                "https://s.example/",
                Some("https://s.example/other"),
                "direct",
            ),
            ("https://s.example/", None, "direct"),
        ];
        for (page, referrer, platform) in cases {
            assert_eq!(
                visit(page, referrer).platform.as_str(),
                platform,
                "{page} {referrer:?}"
            );
        }
    }

    #[test]
    fn every_platform_reads_back_and_unknown_names_read_as_other() {
        for platform in WebPlatform::ALL {
            let json = serde_json::to_string(&platform).unwrap();
            assert_eq!(json, format!("\"{}\"", platform.as_str()));
            assert_eq!(
                serde_json::from_str::<WebPlatform>(&json).unwrap(),
                platform
            );
        }
        let stored: WebPlatform = serde_json::from_str("\"blog.example.org\"").unwrap();
        assert_eq!(stored, WebPlatform::Other);
    }

    #[test]
    fn stored_urls_and_params_are_capped_after_encoding() {
        // Spaces and non-ASCII letters are percent-encoded when the URL is re-serialised: three
        // (or nine) bytes for each byte or letter sent.
        let page = format!("https://shop.example/?utm_term=x&q={}", " é".repeat(2_000));
        assert!(page.len() <= MAX_URL_BYTES);
        let v = visit(&page, Some(&page));
        assert_eq!(v.page_url.len(), MAX_STORED_URL_BYTES);
        assert_eq!(v.referrer.unwrap().len(), MAX_STORED_URL_BYTES);
        let wide = format!(
            "https://shop.example/?utm_source={}",
            "%E2%82%AC".repeat(400)
        );
        let source = visit(&wide, None).utm.source.unwrap();
        assert!(source.len() <= MAX_PARAM_BYTES && source.len() > MAX_PARAM_BYTES - 3);
        assert!(source.chars().all(|c| c == '€'));
        let controls = visit("https://shop.example/?utm_medium=%01a%0Ab%7F", None);
        assert_eq!(controls.utm.medium.as_deref(), Some("ab"));
    }

    #[test]
    fn web_contact_ids_live_apart_from_meta_ids() {
        assert_eq!(
            web_contact_id("v0123abc_-Z").unwrap().as_str(),
            "web:v0123abc_-Z"
        );
        for bad in [
            "",
            "has space",
            "web:x",
            "BR.1502576394655843",
            "a#b",
            &"v".repeat(MAX_VISITOR_ID_CHARS + 1),
        ] {
            assert_eq!(
                web_contact_id(bad).unwrap_err().field,
                "visitor_id",
                "{bad}"
            );
        }
        // A phone number is a valid visitor id, but names a different contact than the phone's.
        assert_eq!(
            web_contact_id("5511987654321").unwrap().as_str(),
            "web:5511987654321"
        );
    }

    #[test]
    fn widget_origins_are_normalised_and_checked_with_the_key() {
        let id = InstanceId::parse("1").unwrap();
        let config = WidgetConfig::new(
            id.clone(),
            &[
                "https://Shop.Example/".to_owned(),
                "http://127.0.0.1:3000".to_owned(),
            ],
            now(),
        )
        .unwrap();
        assert_eq!(
            config.allowed_origins,
            ["https://shop.example", "http://127.0.0.1:3000"]
        );
        let key = config.widget_key.as_bytes();
        assert!(config.admits(Some("https://shop.example"), Some(key)));
        assert!(!config.admits(Some("https://evil.example"), Some(key)));
        assert!(!config.admits(Some("https://shop.example"), Some(b"wk_wrong")));
        assert!(!config.admits(None, Some(key)));
        for bad in [
            vec![],
            vec!["https://shop.example/path".to_owned()],
            vec!["shop.example".to_owned()],
        ] {
            assert!(
                WidgetConfig::new(id.clone(), &bad, now()).is_err(),
                "{bad:?}"
            );
        }
        let rotated = WidgetConfig::new(id, &["https://shop.example".to_owned()], now()).unwrap();
        assert_ne!(rotated.widget_key, config.widget_key);
    }

    #[test]
    fn a_visit_counts_only_under_a_listed_campaign_compared_exactly() {
        let id = InstanceId::parse("1").unwrap();
        let config = WidgetConfig::new(id, &["https://shop.example".to_owned()], now())
            .unwrap()
            .with_campaigns(&[" Spring Sale ".to_owned(), "Spring Sale".to_owned()])
            .unwrap();
        assert_eq!(config.campaigns, ["Spring Sale"], "trimmed, once");
        let counted = |page: &str| config.mark_counted(visit(page, None)).counted_campaign;
        assert_eq!(
            counted("https://s.example/?utm_campaign=Spring+Sale").as_deref(),
            Some("Spring Sale")
        );
        assert_eq!(counted("https://s.example/?utm_campaign=spring+sale"), None);
        assert_eq!(counted("https://s.example/?utm_campaign=Other"), None);
        assert_eq!(counted("https://s.example/"), None);
        let too_many: Vec<String> = (0..=MAX_CAMPAIGNS).map(|n| n.to_string()).collect();
        let long = "x".repeat(MAX_CAMPAIGN_CHARS + 1);
        for (bad, field) in [
            (too_many, "campaigns"),
            (vec!["ok".to_owned(), " ".to_owned()], "campaigns[1]"),
            (vec![long], "campaigns[0]"),
            (vec!["a\nb".to_owned()], "campaigns[0]"),
        ] {
            let error = config.clone().with_campaigns(&bad).unwrap_err();
            assert_eq!(error.field, field);
        }
    }

    #[test]
    fn ref_codes_are_found_in_text_and_expire() {
        let id = InstanceId::parse("1").unwrap();
        let code = RefCode::new(
            id.clone(),
            "v1".into(),
            visit("https://s.example/?utm_source=x", None),
            now(),
        );
        let text = format!("Hi! I want the red shoes{}", code.text_suffix());
        assert_eq!(ref_code_in(&text), Some(code.code.as_str()));
        assert_eq!(ref_code_in("Hi [ref:short]"), None);
        assert_eq!(without_ref_code(&text), "Hi! I want the red shoes");
        assert_eq!(without_ref_code("a [ref:abcdefgh] b"), "a b");
        assert_eq!(without_ref_code("Hi [ref:short]"), "Hi [ref:short]");
        assert_eq!(without_ref_code(&text), "Hi! I want the red shoes");
        assert_eq!(without_ref_code("a [ref:abcdefgh] b"), "a b");
        assert_eq!(without_ref_code("Hi [ref:short]"), "Hi [ref:short]");
        assert_eq!(ref_code_in("no code"), None);
        assert!(code.applies(&id, now().plus_seconds(REF_TTL_SECONDS)));
        assert!(!code.applies(&id, now().plus_seconds(REF_TTL_SECONDS + 1)));
        assert!(!code.applies(&InstanceId::parse("2").unwrap(), now()));
        assert_eq!(code.acquisition_visit().via.as_deref(), Some("wa.me"));
    }
}
