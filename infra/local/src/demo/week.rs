//! The demo's week, as data: who wrote in, from which ad or pre-filled text, when (days and
//! minutes before "now"), what the business sent them and what they bought. Ids and shapes
//! follow Meta's sample deliveries; the people and numbers are made up.

/// The WhatsApp business number (`phone_number_id`): CTWA ads, rules, the widget, revenue.
pub const WHATSAPP: &str = "106540352242922";
/// The Facebook page (Messenger).
pub const PAGE: &str = "448736998987654";
/// The Instagram business account.
pub const INSTAGRAM: &str = "17841400000000001";
/// The shop's site, the widget's one allowed origin.
pub const SHOP: &str = "https://shop.example";

/// When something happened: whole days, then minutes, before now.
#[derive(Clone, Copy)]
pub struct Ago {
    pub days: i64,
    pub minutes: i64,
}

const fn ago(days: i64, minutes: i64) -> Ago {
    Ago { days, minutes }
}

/// A click-to-WhatsApp ad, as its referral describes it.
pub struct Ad {
    pub id: &'static str,
    pub source_url: &'static str,
    pub headline: &'static str,
    pub body: &'static str,
    /// Absent for an ad shown in WhatsApp Status.
    pub ctwa_clid: Option<&'static str>,
}

const fn ad(
    id: &'static str,
    source_url: &'static str,
    (headline, body): (&'static str, &'static str),
    ctwa_clid: Option<&'static str>,
) -> Ad {
    Ad {
        id,
        source_url,
        headline,
        body,
        ctwa_clid,
    }
}

#[rustfmt::skip]
pub const SUMMER_SALE: Ad = ad("120226305854810726", "https://fb.me/3cr4Wqqkv", ("Chat with us", "Summer sale: 30% off every plan this week."), Some("ARAkLkA8rmlFeiCktEJQ-QTwRiyYHAFDLMNDBH0CD3qpjd0HR4irJ6LEkR7JwFF4XvnO2E4Nx0"));
#[rustfmt::skip]
pub const SNEAKER_DROP: Ad = ad("120226305854810999", "https://www.instagram.com/p/C8demoSneakers/", ("New sneakers drop", "The Aurora runner is back in five colours."), Some("ARBxQmT7fYpL2kWd9sJ3nV0cR5uE8hG1aZ4oI6yX2bN7mK0qP3tS9wD5fH8jL1"));
/// Shown in WhatsApp Status: no `ctwa_clid`.
#[rustfmt::skip]
pub const FREE_SHIPPING: Ad = ad("120226305854811234", "https://fb.me/9xYzFreeShip", ("Free shipping week", "Free shipping on every order until Sunday."), None);

/// Who a WhatsApp message comes from: a phone number, or a username user's BSUID alone.
pub enum Sender {
    Phone(&'static str),
    Username {
        user_id: &'static str,
        username: &'static str,
    },
}

/// One WhatsApp message: its sender, name, text, time and the ad it came from, if any.
pub struct WhatsAppMessage {
    pub id: &'static str,
    pub from: Sender,
    pub name: &'static str,
    pub text: &'static str,
    pub at: Ago,
    pub ad: Option<&'static Ad>,
}

const fn wa(
    id: &'static str,
    phone: &'static str,
    name: &'static str,
    text: &'static str,
    at: Ago,
    ad: Option<&'static Ad>,
) -> WhatsAppMessage {
    WhatsAppMessage {
        id,
        from: Sender::Phone(phone),
        name,
        text,
        at,
        ad,
    }
}

/// The WhatsApp week, in the order it is delivered. The LinkedIn texts arrive before their
/// rule exists (the backfill attributes them); the last ones are later messages of earlier
/// contacts.
#[rustfmt::skip]
pub const WHATSAPP_MESSAGES: &[WhatsAppMessage] = &[
    wa("wamid.demo-001", "16505551234", "Sheena Nelson", "Hi! I'd like to know more about the summer sale.", ago(6, 0), Some(&SUMMER_SALE)),
    wa("wamid.demo-002", "447700900123", "Oliver Hughes", "Is the 30% off valid on annual plans?", ago(5, 200), Some(&SUMMER_SALE)),
    wa("wamid.demo-003", "5511987650001", "Ana Souza", "Quero o tênis Aurora, tem 38?", ago(4, 90), Some(&SNEAKER_DROP)),
    wa("wamid.demo-004", "34612345678", "Lucía Romero", "Do the sneakers come in green?", ago(2, 30), Some(&SNEAKER_DROP)),
    wa("wamid.demo-005", "61412345678", "Jack Wilson", "Is shipping really free to Perth?", ago(1, 300), Some(&FREE_SHIPPING)),
    WhatsAppMessage {
        id: "wamid.demo-006",
        from: Sender::Username {
            user_id: "MX.8820194736550012",
            username: "@marta.r",
        },
        name: "Marta",
        text: "¿Tienen envío gratis a Monterrey?",
        at: ago(3, 45),
        ad: Some(&SUMMER_SALE),
    },
    wa("wamid.demo-007", "818012345678", "Kenji Tanaka", "Hi, I saw your TikTok ad!", ago(6, 30), None),
    wa("wamid.demo-008", "818012345679", "Yui Sato", "hi i saw your tiktok ad, is the code still valid?", ago(4, 15), None),
    wa("wamid.demo-009", "15125550147", "Maya Brooks", "Hi, I saw your TikTok ad!", ago(2, 400), None),
    wa("wamid.demo-010", "4915112345678", "Jonas Weber", "Hello, I found you on Google. Do you ship to Berlin?", ago(5, 60), None),
    wa("wamid.demo-011", "33612345678", "Camille Martin", "Hello, I found you on Google", ago(1, 120), None),
    wa("wamid.demo-012", "919812345678", "Priya Shah", "Watched your YouTube review, which size fits me?", ago(3, 200), None),
    wa("wamid.demo-013", "15105550188", "Ethan Clark", "LinkedIn offer: team plan for 10 seats", ago(5, 10), None),
    wa("wamid.demo-014", "16175550111", "Grace Lee", "linkedin offer - do you invoice in GBP?", ago(3, 500), None),
    wa("wamid.demo-015", "27821234567", "Thabo Nkosi", "hello, what are your opening hours?", ago(2, 100), None),
    wa("wamid.demo-016", "5215512345678", "Diego Ramírez", "Hi", ago(0, 240), None),
    wa("wamid.demo-101", "16505551234", "Sheena Nelson", "Great, I'll take the annual plan.", ago(5, 1200), None),
    wa("wamid.demo-102", "5511987650001", "Ana Souza", "Pode enviar o link de pagamento?", ago(4, 30), None),
    wa("wamid.demo-103", "818012345678", "Kenji Tanaka", "Ordered, thanks!", ago(5, 900), None),
];

/// A rule as the admin API takes it: name, platform, match kind and pattern, campaign, ad.
pub struct RuleSpec {
    pub name: &'static str,
    pub platform: &'static str,
    pub kind: &'static str,
    pub pattern: &'static str,
    pub campaign: &'static str,
    pub ad: &'static str,
    pub priority: u32,
}

const fn rule(
    name: &'static str,
    platform: &'static str,
    (kind, pattern): (&'static str, &'static str),
    (campaign, ad): (&'static str, &'static str),
    priority: u32,
) -> RuleSpec {
    RuleSpec {
        name,
        platform,
        kind,
        pattern,
        campaign,
        ad,
        priority,
    }
}

/// The rules in place before the week's texts.
#[rustfmt::skip]
pub const RULES: &[RuleSpec] = &[
    rule("TikTok spring video", "tiktok", ("contains", "saw your TikTok ad"), ("spring-2026", "video-a"), 10),
    rule("Google search", "google", ("prefix", "Hello, I found you on Google"), ("search-brand", "rsa-1"), 20),
    rule("YouTube review", "youtube", ("regex", r"youtube (review|video)"), ("creator-reviews", "review-sizes"), 30),
];

/// The rule made after its texts arrived, which the backfill applies to them.
pub const LATE_RULE: RuleSpec = rule(
    "LinkedIn team plan",
    "linkedin",
    ("prefix", "LinkedIn offer"),
    ("b2b-teams", "sponsored-post-2"),
    40,
);

/// How a Messenger or Instagram conversation was opened.
pub enum Opened {
    /// A standalone `referral` event from an ad (`ad_id`, ad title), on an existing thread.
    AdReferral(&'static str, &'static str),
    /// A new thread's "Get Started" `postback` carrying an ad's referral.
    AdGetStarted(&'static str, &'static str),
    /// An m.me / ig.me link: its `source` and `ref`.
    Link(&'static str, &'static str),
    /// Nothing: the person just wrote.
    Organic,
}

/// A Messenger or Instagram conversation: how it opened, then one message.
pub struct Conversation {
    pub sender: &'static str,
    pub opened: Opened,
    pub text: &'static str,
    pub at: Ago,
}

const fn thread(sender: &'static str, opened: Opened, text: &'static str, at: Ago) -> Conversation {
    Conversation {
        sender,
        opened,
        text,
        at,
    }
}

#[rustfmt::skip]
pub const MESSENGER: &[Conversation] = &[
    thread("7391029384756012", Opened::AdReferral("120226305854811111", "Spring collection"), "Is the linen jacket still available?", ago(5, 100)),
    thread("7391029384756099", Opened::AdGetStarted("120226305854811112", "Spring collection: carousel"), "Which colours do you have?", ago(3, 20)),
    thread("7391029384756055", Opened::Link("SHORTLINK", "newsletter-june"), "Hi, from your newsletter", ago(1, 50)),
    thread("7391029384756077", Opened::Organic, "Do you have a store in Lisbon?", ago(0, 60)),
];

#[rustfmt::skip]
pub const INSTAGRAM_THREADS: &[Conversation] = &[
    thread("6612345678901234", Opened::AdReferral("120226305854812001", "Aurora runner reel"), "Price for the white ones?", ago(4, 300)),
    thread("6612345678905678", Opened::AdReferral("120226305854812001", "Aurora runner reel"), "Do you ship to Canada?", ago(2, 10)),
    thread("662019384756177", Opened::Link("IGME-SOURCE-LINK", "bio-link"), "Hi! Came from your bio link", ago(1, 700)),
];

/// A widget visit: the visitor, the landing page (its UTMs and click ids), the referrer, and
/// what the visitor wrote in the chat.
pub struct Visit {
    pub visitor: &'static str,
    pub page_url: &'static str,
    pub referrer: Option<&'static str>,
    pub message: &'static str,
}

const fn visit(
    visitor: &'static str,
    page_url: &'static str,
    referrer: Option<&'static str>,
    message: &'static str,
) -> Visit {
    Visit {
        visitor,
        page_url,
        referrer,
        message,
    }
}

#[rustfmt::skip]
pub const VISITS: &[Visit] = &[
    visit("v0d3m0000000000000000000000000001", "https://shop.example/sneakers?utm_source=google&utm_medium=cpc&utm_campaign=search-brand&utm_content=rsa-1&gclid=Cj0KCQdemo1", Some("https://www.google.com/"), "Do you have the Aurora in size 42?"),
    visit("v0d3m0000000000000000000000000002", "https://shop.example/?utm_source=tiktok&utm_medium=paid_social&utm_campaign=spring-2026&ttclid=E.C.P.demo2", None, "Hi! Is the discount code still valid?"),
    visit("v0d3m0000000000000000000000000003", "https://shop.example/plans?utm_source=newsletter&utm_medium=email&utm_campaign=june-digest", None, "Can I switch plans later?"),
    visit("v0d3m0000000000000000000000000004", "https://shop.example/sale?msclkid=demo4bing&utm_campaign=bing-sale", Some("https://www.bing.com/"), "When does the sale end?"),
    visit("v0d3m0000000000000000000000000005", "https://shop.example/teams?li_fat_id=demo5-li&utm_campaign=b2b-teams", Some("https://www.linkedin.com/"), "Do you offer invoices?"),
];

/// A visit whose wa.me link carries its ref code into WhatsApp, and the WhatsApp message that
/// follows it (the code is appended when it is sent).
pub const BRIDGED_VISIT: Visit = visit(
    "v0d3m0000000000000000000000000006",
    "https://shop.example/sneakers/aurora?utm_source=facebook&utm_medium=paid_social&utm_campaign=retargeting&fbclid=IwARdemo6",
    Some("https://l.facebook.com/"),
    "",
);
pub const BRIDGED_MESSAGE: WhatsAppMessage = wa(
    "wamid.demo-201",
    "5511912340006",
    "Rafael Costa",
    "Hi, I'd like the Aurora runner",
    ago(0, 0),
    None,
);

/// An affiliate offer: id, name, destination (`{click_id}` marks the click id's place), its
/// click window in days, currency.
pub struct OfferSpec(
    pub &'static str,
    pub &'static str,
    pub &'static str,
    pub u32,
    pub &'static str,
);

#[rustfmt::skip]
pub const OFFERS: &[OfferSpec] = &[
    OfferSpec("aurora-runner", "Aurora runner", "https://shop.example/p/aurora?aff_click={click_id}", 30, "USD"),
    OfferSpec("annual-plan", "Annual plan", "https://shop.example/checkout/annual?aff_click={click_id}", 90, "EUR"),
];

/// A message the business sent with a tracked link, and how many times it was clicked.
pub struct SendSpec {
    pub contact: &'static str,
    pub message_id: &'static str,
    /// Campaign, creative, offer.
    pub tags: (&'static str, &'static str, &'static str),
    pub sent: Ago,
    pub clicks: usize,
}

const fn send(
    contact: &'static str,
    message_id: &'static str,
    tags: (&'static str, &'static str, &'static str),
    sent: Ago,
    clicks: usize,
) -> SendSpec {
    SendSpec {
        contact,
        message_id,
        tags,
        sent,
        clicks,
    }
}

#[rustfmt::skip]
pub const SENDS: &[SendSpec] = &[
    send("5511987650001", "wamid.demo-out-1", ("sneaker-drop", "tpl-carousel", "aurora-runner"), ago(4, 20), 2),
    send("34612345678", "wamid.demo-out-2", ("sneaker-drop", "tpl-carousel", "aurora-runner"), ago(2, 10), 1),
    send("818012345678", "wamid.demo-out-3", ("spring-2026", "tpl-coupon", "aurora-runner"), ago(5, 800), 1),
    send("MX.8820194736550012", "wamid.demo-out-4", ("spring-2026", "tpl-coupon", "aurora-runner"), ago(3, 30), 1),
    send("16505551234", "wamid.demo-out-5", ("summer-sale", "tpl-plan-offer", "annual-plan"), ago(5, 1100), 1),
    send("447700900123", "wamid.demo-out-6", ("summer-sale", "tpl-plan-offer", "annual-plan"), ago(5, 150), 1),
    send("4915112345678", "wamid.demo-out-7", ("search-brand", "tpl-coupon", "aurora-runner"), ago(1, 30), 0),
];

/// A conversion posted back: the network, whose click (the first click of `SENDS[i]`, or a
/// click id that never was), its conversion id and amount, and the status it must answer.
pub struct PostbackSpec(
    pub &'static str,
    pub Option<usize>,
    pub &'static str,
    pub &'static str,
    pub &'static str,
);

/// Credited conversions, one delivered twice, one naming an unknown click (kept, credited to
/// nothing).
#[rustfmt::skip]
pub const POSTBACKS: &[PostbackSpec] = &[
    PostbackSpec("tune", Some(0), "TUNE-1001", "129.90", "attributed"),
    PostbackSpec("tune", Some(2), "TUNE-1002", "119.90", "attributed"),
    PostbackSpec("everflow", Some(3), "EF-2001", "129.90", "attributed"),
    PostbackSpec("everflow", Some(4), "EF-2002", "240.00", "attributed"),
    PostbackSpec("generic", Some(5), "GEN-3001", "240.00", "attributed"),
    PostbackSpec("tune", Some(0), "TUNE-1001", "129.90", "duplicate"),
    PostbackSpec("tune", None, "TUNE-1999", "59.90", "unknown_click"),
];

/// The click id of the unknown-click postback.
pub const UNKNOWN_CLICK: &str = "01JDEMQ0000000000000000000";
