//! What a run leaves: the normalized timeline (snapshots), the HTML report, JUnit XML.

pub mod html;
pub mod junit;
pub mod timeline;
