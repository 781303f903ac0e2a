// Command golden-gen writes the userdata crate's golden files: for each fixture in
// ../tests/golden/fixtures.json it calls upstream Karpenter's own bootstrap package (the code
// that writes a node's user data in aws/karpenter-provider-aws) and stores the decoded text as
// ../tests/golden/<name>.txt. Run it with `make userdata-golden` (needs Go and the module proxy).
package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	corev1 "k8s.io/api/core/v1"

	v1 "github.com/aws/karpenter-provider-aws/pkg/apis/v1"
	"github.com/aws/karpenter-provider-aws/pkg/providers/amifamily/bootstrap"
)

type cluster struct {
	Name     string `json:"name"`
	Endpoint string `json:"endpoint"`
	CABundle string `json:"caBundle"`
	CIDR     string `json:"cidr"`
}

type fixture struct {
	Name           string                   `json:"name"`
	Family         string                   `json:"family"`
	Cluster        cluster                  `json:"cluster"`
	Labels         map[string]string        `json:"labels"`
	Taints         []corev1.Taint           `json:"taints"`
	Kubelet        *v1.KubeletConfiguration `json:"kubelet"`
	CustomUserData *string                  `json:"customUserData"`
}

// samples bounds how often a fixture is rendered: Karpenter's AL2 script joins kubelet map
// arguments in Go map order, so its output varies between calls when a map has several entries.
const samples = 2000

// nonEmpty is nil for "", as Karpenter passes a cluster CA or CIDR it could not resolve.
func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func bootstrapper(f fixture) (bootstrap.Bootstrapper, error) {
	opts := bootstrap.Options{
		ClusterName:     f.Cluster.Name,
		ClusterEndpoint: f.Cluster.Endpoint,
		ClusterCIDR:     nonEmpty(f.Cluster.CIDR),
		KubeletConfig:   f.Kubelet,
		Taints:          f.Taints,
		Labels:          f.Labels,
		CABundle:        nonEmpty(f.Cluster.CABundle),
		CustomUserData:  f.CustomUserData,
	}
	switch f.Family {
	case "AL2":
		return bootstrap.EKS{Options: opts}, nil
	case "AL2023":
		return bootstrap.Nodeadm{Options: opts}, nil
	case "Bottlerocket":
		return bootstrap.Bottlerocket{Options: opts, EnableDefaultMountPaths: true}, nil
	}
	return nil, fmt.Errorf("fixture %s: unknown family %q", f.Name, f.Family)
}

// render returns every distinct text Karpenter produced for the fixture, smallest first.
func render(f fixture) ([]string, error) {
	b, err := bootstrapper(f)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for range samples {
		encoded, err := b.Script(context.Background())
		if err != nil {
			return nil, fmt.Errorf("fixture %s: %w", f.Name, err)
		}
		text, err := base64.StdEncoding.DecodeString(encoded)
		if err != nil {
			return nil, fmt.Errorf("fixture %s: Script() is not base64: %w", f.Name, err)
		}
		seen[string(text)] = true
	}
	texts := make([]string, 0, len(seen))
	for t := range seen {
		texts = append(texts, t)
	}
	sort.Strings(texts)
	return texts, nil
}

func run(dir string) error {
	raw, err := os.ReadFile(filepath.Join(dir, "fixtures.json"))
	if err != nil {
		return err
	}
	var fixtures []fixture
	if err := json.Unmarshal(raw, &fixtures); err != nil {
		return fmt.Errorf("fixtures.json: %w", err)
	}
	for _, f := range fixtures {
		texts, err := render(f)
		if err != nil {
			return err
		}
		// With several orders possible, the smallest joins map entries sorted by key, the order
		// the Rust renderer uses. It is one of Karpenter's outputs: a small Go map iterates its
		// entries in insertion order from a random start, and the fixtures list keys sorted, as
		// the API server serializes the EC2NodeClass Karpenter reads them from.
		out := filepath.Join(dir, f.Name+".txt")
		if err := os.WriteFile(out, []byte(texts[0]), 0o644); err != nil {
			return err
		}
		fmt.Printf("%-28s %-12s %d distinct output(s) in %d calls -> %s\n", f.Name, f.Family, len(texts), samples, out)
	}
	return nil
}

func main() {
	dir := "../tests/golden"
	if len(os.Args) > 1 {
		dir = os.Args[1]
	}
	if err := run(dir); err != nil {
		fmt.Fprintln(os.Stderr, "golden-gen:", err)
		os.Exit(1)
	}
}
