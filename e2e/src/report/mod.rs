//! What a run leaves: the normalized timeline (snapshots), the HTML report, JUnit XML.
//!
//! The report is drawn from a plain data model ([`view::RunView`]: lanes, markers, series,
//! metadata) by pure functions ([`html::render`], [`html::render_comparison`]).

mod chart;
pub mod html;
pub mod junit;
mod lanes;
pub mod summary;
pub mod svg;
pub mod timeline;
pub mod view;
