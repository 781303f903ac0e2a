use super::*;

fn names(family: AmiFamily, version: &str) -> Vec<String> {
    family.alias_parameters("1.34", version).into_iter().map(|p| p.name).collect()
}

fn names_at(family: AmiFamily, k8s: &str, version: &str) -> Vec<String> {
    family.alias_parameters(k8s, version).into_iter().map(|p| p.name).collect()
}

#[test]
fn al2023_reads_standard_nvidia_and_neuron_parameters() {
    assert_eq!(
        names(AmiFamily::Al2023, "latest"),
        [
            "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/standard/recommended/image_id",
            "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/nvidia/recommended/image_id",
            "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/x86_64/neuron/recommended/image_id",
            "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/arm64/standard/recommended/image_id",
            "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/arm64/nvidia/recommended/image_id",
        ]
    );
    assert_eq!(
        names(AmiFamily::Al2023, "v20251120")[3],
        "/aws/service/eks/optimized-ami/1.34/amazon-linux-2023/arm64/standard/amazon-eks-node-al2023-arm64-standard-1.34-v20251120/image_id"
    );
}

#[test]
fn al2_reads_plain_gpu_and_arm64_parameters() {
    // Kubernetes 1.32: the last version with AL2 images (see `al2_aliases_stop_at_kubernetes_1_33_as_in_karpenter`).
    assert_eq!(
        names_at(AmiFamily::Al2, "1.32", "latest"),
        [
            "/aws/service/eks/optimized-ami/1.32/amazon-linux-2/recommended/image_id",
            "/aws/service/eks/optimized-ami/1.32/amazon-linux-2-gpu/recommended/image_id",
            "/aws/service/eks/optimized-ami/1.32/amazon-linux-2-gpu/recommended/image_id",
            "/aws/service/eks/optimized-ami/1.32/amazon-linux-2-arm64/recommended/image_id",
        ]
    );
    assert_eq!(
        names_at(AmiFamily::Al2, "1.32", "v20251120"),
        [
            "/aws/service/eks/optimized-ami/1.32/amazon-linux-2/amazon-eks-node-1.32-v20251120/image_id",
            "/aws/service/eks/optimized-ami/1.32/amazon-linux-2-gpu/amazon-eks-gpu-node-1.32-v20251120/image_id",
            "/aws/service/eks/optimized-ami/1.32/amazon-linux-2-gpu/amazon-eks-gpu-node-1.32-v20251120/image_id",
            "/aws/service/eks/optimized-ami/1.32/amazon-linux-2-arm64/amazon-eks-arm64-node-1.32-v20251120/image_id",
        ]
    );
}

#[test]
fn bottlerocket_reads_latest_or_its_release() {
    assert_eq!(
        names(AmiFamily::Bottlerocket, "latest"),
        [
            "/aws/service/bottlerocket/aws-k8s-1.34/x86_64/latest/image_id",
            "/aws/service/bottlerocket/aws-k8s-1.34-nvidia/x86_64/latest/image_id",
            "/aws/service/bottlerocket/aws-k8s-1.34/arm64/latest/image_id",
            "/aws/service/bottlerocket/aws-k8s-1.34-nvidia/arm64/latest/image_id",
        ]
    );
    assert_eq!(
        names(AmiFamily::Bottlerocket, "v1.50.0")[0],
        "/aws/service/bottlerocket/aws-k8s-1.34/x86_64/1.50.0/image_id"
    );
    assert!(names(AmiFamily::Custom, "latest").is_empty());
}

#[test]
fn variants_carry_arch_and_accelerator_requirements() {
    let params = AmiFamily::Bottlerocket.alias_parameters("1.34", "latest");
    let standard = &params[0].requirements;
    assert!(standard.get(labels::ARCH).has("amd64"));
    assert_eq!(standard.get(labels::INSTANCE_GPU_COUNT), &Requirement::does_not_exist());
    assert_eq!(standard.get(labels::INSTANCE_ACCELERATOR_COUNT), &Requirement::does_not_exist());
    let nvidia_arm = &params[3].requirements;
    assert!(nvidia_arm.get(labels::ARCH).has("arm64"));
    assert_eq!(nvidia_arm.get(labels::INSTANCE_GPU_COUNT), &Requirement::exists());
    let neuron = &AmiFamily::Al2023.alias_parameters("1.34", "latest")[2].requirements;
    assert_eq!(neuron.get(labels::INSTANCE_ACCELERATOR_COUNT), &Requirement::exists());
}

#[test]
fn default_block_devices_per_family() {
    let sizes = |f: AmiFamily| {
        f.default_block_devices().into_iter().map(|b| (b.device_name, b.volume_size_gib)).collect::<Vec<_>>()
    };
    assert_eq!(sizes(AmiFamily::Al2), [("/dev/xvda".to_owned(), Some(20))]);
    assert_eq!(sizes(AmiFamily::Al2023), [("/dev/xvda".to_owned(), Some(20))]);
    assert_eq!(sizes(AmiFamily::Bottlerocket), [("/dev/xvda".to_owned(), Some(4)), ("/dev/xvdb".to_owned(), Some(20))]);
    assert!(sizes(AmiFamily::Custom).is_empty());
    assert!(
        AmiFamily::Bottlerocket
            .default_block_devices()
            .iter()
            .all(|b| { b.volume_type.as_deref() == Some("gp3") && b.encrypted == Some(true) })
    );
    assert_eq!(AmiFamily::Bottlerocket.ephemeral_device(), "/dev/xvdb");
}

#[test]
fn aliases_parse() {
    assert_eq!(Alias::parse("al2@latest"), Ok(Alias { family: AmiFamily::Al2, version: "latest".into() }));
    assert_eq!(
        Alias::parse("Bottlerocket@v1.50.0"),
        Ok(Alias { family: AmiFamily::Bottlerocket, version: "v1.50.0".into() })
    );
    assert_eq!(Alias::parse("al2023"), Err(AmiFamilyError::MalformedAlias("al2023".into())));
    assert_eq!(Alias::parse("windows2022@latest"), Err(AmiFamilyError::UnknownAliasFamily("windows2022".into())));
}

#[test]
fn nodeclass_family_prefers_ami_family_then_alias() {
    assert_eq!(nodeclass_family(Some("AL2"), ["bottlerocket@latest"]), Ok(AmiFamily::Al2));
    assert_eq!(nodeclass_family(None, ["bottlerocket@latest"]), Ok(AmiFamily::Bottlerocket));
    assert_eq!(nodeclass_family(None, []), Ok(AmiFamily::Custom));
    assert_eq!(nodeclass_family(Some("Windows2022"), []), Err(AmiFamilyError::UnknownFamily("Windows2022".into())));
    assert_eq!(AmiFamily::Custom.user_data_format(), None);
    assert_eq!(AmiFamily::Al2.user_data_format(), Some(userdata::Family::Al2));
}

#[test]
fn al2_aliases_stop_at_kubernetes_1_33_as_in_karpenter() {
    let al2 = Alias { family: AmiFamily::Al2, version: "latest".into() };
    assert_eq!(al2.check_supported("1.32"), Ok(()));
    assert_eq!(al2.check_supported("1.33"), Err(AmiFamilyError::Al2AliasUnsupported));
    assert_eq!(al2.check_supported("1.34"), Err(AmiFamilyError::Al2AliasUnsupported));
    let br = Alias { family: AmiFamily::Bottlerocket, version: "latest".into() };
    assert_eq!(br.check_supported("1.34"), Ok(()));
    assert!(
        AmiFamilyError::Al2AliasUnsupported.to_string().starts_with("AL2 aliases are no longer supported on EKS 1.33+")
    );
}
