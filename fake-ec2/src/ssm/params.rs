//! The public AMI parameters, derived from the world's image names the way AWS publishes them:
//!
//! | image name | parameters (`<seg>` = `recommended`/`latest` or a pinned segment) |
//! |---|---|
//! | `amazon-eks-node-al2023-<arch>-<variant>-<k8s>-v<date>` | `/aws/service/eks/optimized-ami/<k8s>/amazon-linux-2023/<arch>/<variant>/<seg>/image_id`, pinned segment = the image name |
//! | `amazon-eks-node-<k8s>-v<date>` | `/aws/service/eks/optimized-ami/<k8s>/amazon-linux-2/<seg>/image_id`, pinned = the name |
//! | `amazon-eks-arm64-node-<k8s>-v<date>` | `.../amazon-linux-2-arm64/<seg>/image_id` |
//! | `amazon-eks-gpu-node-<k8s>-v<date>` | `.../amazon-linux-2-gpu/<seg>/image_id` |
//! | `bottlerocket-aws-k8s-<k8s>[-nvidia]-<arch>-v<version>-<commit>` | `/aws/service/bottlerocket/aws-k8s-<k8s>[-nvidia]/<arch>/<seg>/image_id`, pinned = `<version>` and `<version>-<commit>` |
//!
//! The moving segment (`recommended` for EKS, `latest` for Bottlerocket) names the newest
//! non-deprecated image of its series, and its version counts the series' releases. These are
//! exactly the paths Karpenter's `al2023@`, `al2@` and `bottlerocket@` aliases read
//! (`pkg/providers/amifamily/{al2023,al2,bottlerocket}.go`). Windows has none.

use std::collections::BTreeMap;

use crate::world::network::Image;

const EKS: &str = "/aws/service/eks/optimized-ami";
const BOTTLEROCKET: &str = "/aws/service/bottlerocket";

/// A parameter and what it resolves to.
#[derive(Debug, Clone, Copy)]
pub struct AmiParameter<'w> {
    pub image: &'w Image,
    /// Bumped by each release of the series.
    pub version: usize,
}

/// Where one image sits: its series (the path before the moving segment), that segment's name,
/// and the pinned segments that name this image for good.
#[derive(Debug, PartialEq, Eq)]
struct Placement {
    series: String,
    moving: &'static str,
    pinned: Vec<String>,
}

fn is_k8s_version(v: &str) -> bool {
    v.split_once('.').is_some_and(|(a, b)| {
        !a.is_empty() && !b.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && b.bytes().all(|c| c.is_ascii_digit())
    })
}

fn is_release(r: &str) -> bool {
    r.strip_prefix('v').is_some_and(|d| !d.is_empty() && d.bytes().all(|c| c.is_ascii_digit()))
}

fn is_arch(a: &str) -> bool {
    matches!(a, "x86_64" | "arm64")
}

/// `<k8s>-v<date>`: the tail every EKS optimized AMI name ends with.
fn eks_tail(rest: &str) -> Option<&str> {
    let (k8s, release) = rest.split_once('-')?;
    (is_k8s_version(k8s) && is_release(release)).then_some(k8s)
}

fn al2023(name: &str) -> Option<Placement> {
    let rest = name.strip_prefix("amazon-eks-node-al2023-")?;
    let (arch, rest) = rest.split_once('-')?;
    let (variant, rest) = rest.split_once('-')?;
    let k8s = eks_tail(rest)?;
    if !is_arch(arch) || !matches!(variant, "standard" | "nvidia" | "neuron") {
        return None;
    }
    Some(Placement {
        series: format!("{EKS}/{k8s}/amazon-linux-2023/{arch}/{variant}"),
        moving: "recommended",
        pinned: vec![name.to_owned()],
    })
}

fn al2(name: &str) -> Option<Placement> {
    let rest = name.strip_prefix("amazon-eks-")?;
    let (flavour, rest) = if let Some(r) = rest.strip_prefix("node-") {
        ("", r)
    } else if let Some(r) = rest.strip_prefix("arm64-node-") {
        ("-arm64", r)
    } else {
        ("-gpu", rest.strip_prefix("gpu-node-")?)
    };
    let k8s = eks_tail(rest)?;
    Some(Placement {
        series: format!("{EKS}/{k8s}/amazon-linux-2{flavour}"),
        moving: "recommended",
        pinned: vec![name.to_owned()],
    })
}

fn bottlerocket(name: &str) -> Option<Placement> {
    let rest = name.strip_prefix("bottlerocket-aws-k8s-")?;
    let (k8s, rest) = rest.split_once('-')?;
    let (nvidia, rest) = match rest.strip_prefix("nvidia-") {
        Some(r) => ("-nvidia", r),
        None => ("", rest),
    };
    let (arch, rest) = rest.split_once('-')?;
    let (version, commit) = rest.strip_prefix('v')?.split_once('-')?;
    let version_ok = version.split('.').count() == 3 && version.split('.').all(|p| p.parse::<u32>().is_ok());
    if !is_k8s_version(k8s) || !is_arch(arch) || !version_ok || commit.is_empty() {
        return None;
    }
    Some(Placement {
        series: format!("{BOTTLEROCKET}/aws-k8s-{k8s}{nvidia}/{arch}"),
        moving: "latest",
        pinned: vec![version.to_owned(), format!("{version}-{commit}")],
    })
}

fn placement(name: &str) -> Option<Placement> {
    al2023(name).or_else(|| bottlerocket(name)).or_else(|| al2(name))
}

/// The releases of one series: each image with its pinned segments.
type Releases<'w> = Vec<(&'w Image, Vec<String>)>;

/// Every public parameter the images publish, by name.
pub fn ami_parameters(images: &[Image]) -> BTreeMap<String, AmiParameter<'_>> {
    let mut series: BTreeMap<(String, &'static str), Releases<'_>> = BTreeMap::new();
    for image in images {
        if let Some(p) = placement(&image.cfg.name) {
            series.entry((p.series, p.moving)).or_default().push((image, p.pinned));
        }
    }
    let mut out = BTreeMap::new();
    for ((path, moving), mut members) in series {
        members
            .sort_by(|(a, _), (b, _)| a.cfg.creation_date.cmp(&b.cfg.creation_date).then(a.cfg.name.cmp(&b.cfg.name)));
        for (image, pinned) in &members {
            for segment in pinned {
                out.insert(format!("{path}/{segment}/image_id"), AmiParameter { image, version: 1 });
            }
        }
        if let Some((image, _)) = members.iter().rev().find(|(i, _)| !i.cfg.deprecated) {
            out.insert(format!("{path}/{moving}/image_id"), AmiParameter { image, version: members.len() });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_place_images_in_their_series() {
        let p = placement("amazon-eks-node-al2023-arm64-nvidia-1.34-v20251120");
        assert_eq!(p.map(|p| p.series), Some(format!("{EKS}/1.34/amazon-linux-2023/arm64/nvidia")));
        let p = placement("amazon-eks-gpu-node-1.33-v20251120");
        assert_eq!(p.map(|p| (p.series, p.moving)), Some((format!("{EKS}/1.33/amazon-linux-2-gpu"), "recommended")));
        assert_eq!(
            placement("amazon-eks-node-1.34-v20251120").map(|p| p.series),
            Some(format!("{EKS}/1.34/amazon-linux-2"))
        );
        let p = placement("bottlerocket-aws-k8s-1.34-nvidia-x86_64-v1.50.0-f6c5a2b1");
        assert_eq!(
            p,
            Some(Placement {
                series: format!("{BOTTLEROCKET}/aws-k8s-1.34-nvidia/x86_64"),
                moving: "latest",
                pinned: vec!["1.50.0".into(), "1.50.0-f6c5a2b1".into()],
            })
        );
        for other in [
            "amazon-eks-node-al2023-x86_64-fancy-1.34-v20251120",
            "amazon-eks-node-1.34",
            "amazon-eks-node-al2023-x86_64-standard-latest-v1",
            "bottlerocket-aws-k8s-1.34-riscv-v1.50.0-f6c5a2b1",
            "bottlerocket-aws-ecs-2-x86_64-v1.50.0-f6c5a2b1",
            "Windows_Server-2022-English-Core-EKS_Optimized-1.34-2025.11.20",
            "my-golden-image",
        ] {
            assert_eq!(placement(other), None, "{other}");
        }
    }
}
