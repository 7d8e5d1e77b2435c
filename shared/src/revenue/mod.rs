//! The second half of the product: tracked links in messages, clicks, affiliate postbacks and
//! first-click revenue attribution, with the reports they feed.

pub mod attribution;
pub mod conversions;
pub mod explain;
pub mod import;
pub mod journey;
pub mod links;
pub mod models;
pub mod money;
pub mod postback;
pub mod records;
pub mod report;
pub mod store;

pub use money::{Amount, Currency};
pub use postback::{Network, Postback, PostbackError};
pub use records::{
    Attribution, Click, Conversion, ConversionStatus, Credit, DestinationUrl, Journey, Offer,
    OfferDraft, SendDraft, SendRecord,
};
pub use report::{Dimension, ReportBump, ReportCounter, Tally};
