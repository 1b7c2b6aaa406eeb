package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/coordinator"
	"github.com/ledgervault/ledgervault/internal/testbin"
	"go.yaml.in/yaml/v3"
)

// The Kubernetes objects of the manifest, as far as it uses them. Decoding is strict
// (KnownFields): a field these types do not name, a misspelt runAsNonRoot say, fails
// the test instead of being ignored as the API server's lenient decoding would not.
type (
	k8sObject struct {
		APIVersion string            `yaml:"apiVersion"`
		Kind       string            `yaml:"kind"`
		Metadata   k8sMeta           `yaml:"metadata"`
		Data       map[string]string `yaml:"data"`
		Spec       yaml.Node         `yaml:"spec"`
	}
	k8sMeta struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	deploymentSpec struct {
		Replicas int                   `yaml:"replicas"`
		Strategy struct{ Type string } `yaml:"strategy"`
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Template podTemplate `yaml:"template"`
	}
	cronJobSpec struct {
		Schedule                   string `yaml:"schedule"`
		ConcurrencyPolicy          string `yaml:"concurrencyPolicy"`
		StartingDeadlineSeconds    int    `yaml:"startingDeadlineSeconds"`
		SuccessfulJobsHistoryLimit int    `yaml:"successfulJobsHistoryLimit"`
		FailedJobsHistoryLimit     int    `yaml:"failedJobsHistoryLimit"`
		JobTemplate                struct {
			Spec struct {
				BackoffLimit            int         `yaml:"backoffLimit"`
				ActiveDeadlineSeconds   int         `yaml:"activeDeadlineSeconds"`
				TTLSecondsAfterFinished int         `yaml:"ttlSecondsAfterFinished"`
				Template                podTemplate `yaml:"template"`
			} `yaml:"spec"`
		} `yaml:"jobTemplate"`
	}
	podTemplate struct {
		Metadata k8sMeta `yaml:"metadata"`
		Spec     podSpec `yaml:"spec"`
	}
	podSpec struct {
		TerminationGracePeriodSeconds *int               `yaml:"terminationGracePeriodSeconds"`
		RestartPolicy                 string             `yaml:"restartPolicy"`
		AutomountServiceAccountToken  *bool              `yaml:"automountServiceAccountToken"`
		EnableServiceLinks            *bool              `yaml:"enableServiceLinks"`
		HostNetwork                   bool               `yaml:"hostNetwork"`
		HostPID                       bool               `yaml:"hostPID"`
		HostIPC                       bool               `yaml:"hostIPC"`
		SecurityContext               podSecurityContext `yaml:"securityContext"`
		InitContainers                []container        `yaml:"initContainers"`
		Containers                    []container        `yaml:"containers"`
		Volumes                       []volume           `yaml:"volumes"`
	}
	podSecurityContext struct {
		RunAsNonRoot   *bool          `yaml:"runAsNonRoot"`
		RunAsUser      *int64         `yaml:"runAsUser"`
		RunAsGroup     *int64         `yaml:"runAsGroup"`
		FSGroup        *int64         `yaml:"fsGroup"`
		SeccompProfile *seccomp       `yaml:"seccompProfile"`
		SELinuxOptions *seLinux       `yaml:"seLinuxOptions"`
		AppArmor       *appArmor      `yaml:"appArmorProfile"`
		Sysctls        []nameValue    `yaml:"sysctls"`
		WindowsOptions *windowsOption `yaml:"windowsOptions"`
	}
	containerSecurityContext struct {
		RunAsNonRoot             *bool          `yaml:"runAsNonRoot"`
		RunAsUser                *int64         `yaml:"runAsUser"`
		RunAsGroup               *int64         `yaml:"runAsGroup"`
		AllowPrivilegeEscalation *bool          `yaml:"allowPrivilegeEscalation"`
		Privileged               *bool          `yaml:"privileged"`
		ReadOnlyRootFilesystem   *bool          `yaml:"readOnlyRootFilesystem"`
		ProcMount                string         `yaml:"procMount"`
		Capabilities             *capabilities  `yaml:"capabilities"`
		SeccompProfile           *seccomp       `yaml:"seccompProfile"`
		SELinuxOptions           *seLinux       `yaml:"seLinuxOptions"`
		AppArmor                 *appArmor      `yaml:"appArmorProfile"`
		WindowsOptions           *windowsOption `yaml:"windowsOptions"`
	}
	capabilities struct {
		Add  []string `yaml:"add"`
		Drop []string `yaml:"drop"`
	}
	seccomp struct {
		Type             string `yaml:"type"`
		LocalhostProfile string `yaml:"localhostProfile"`
	}
	seLinux struct {
		User  string `yaml:"user"`
		Role  string `yaml:"role"`
		Type  string `yaml:"type"`
		Level string `yaml:"level"`
	}
	appArmor struct {
		Type             string `yaml:"type"`
		LocalhostProfile string `yaml:"localhostProfile"`
	}
	windowsOption struct {
		HostProcess *bool `yaml:"hostProcess"`
	}
	nameValue struct {
		Name  string `yaml:"name"`
		Value string `yaml:"value"`
	}
	container struct {
		Name            string                   `yaml:"name"`
		Image           string                   `yaml:"image"`
		ImagePullPolicy string                   `yaml:"imagePullPolicy"`
		Command         []string                 `yaml:"command"`
		Args            []string                 `yaml:"args"`
		Env             []envVar                 `yaml:"env"`
		EnvFrom         []yaml.Node              `yaml:"envFrom"`
		Ports           []containerPort          `yaml:"ports"`
		SecurityContext containerSecurityContext `yaml:"securityContext"`
		StartupProbe    *probe                   `yaml:"startupProbe"`
		LivenessProbe   *probe                   `yaml:"livenessProbe"`
		ReadinessProbe  *probe                   `yaml:"readinessProbe"`
		Resources       struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
			ReadOnly  bool   `yaml:"readOnly"`
		} `yaml:"volumeMounts"`
	}
	envVar struct {
		Name      string    `yaml:"name"`
		Value     string    `yaml:"value"`
		ValueFrom yaml.Node `yaml:"valueFrom"`
	}
	containerPort struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
		HostPort      int    `yaml:"hostPort"`
		Protocol      string `yaml:"protocol"`
	}
	probe struct {
		HTTPGet *struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
		InitialDelaySeconds int `yaml:"initialDelaySeconds"`
		PeriodSeconds       int `yaml:"periodSeconds"`
		TimeoutSeconds      int `yaml:"timeoutSeconds"`
		FailureThreshold    int `yaml:"failureThreshold"`
	}
	// volume names every volume source so that a forbidden one (hostPath) decodes and
	// is reported by name rather than as an unknown field.
	volume struct {
		Name                  string         `yaml:"name"`
		ConfigMap             map[string]any `yaml:"configMap"`
		Secret                map[string]any `yaml:"secret"`
		EmptyDir              map[string]any `yaml:"emptyDir"`
		Projected             map[string]any `yaml:"projected"`
		DownwardAPI           map[string]any `yaml:"downwardAPI"`
		PersistentVolumeClaim map[string]any `yaml:"persistentVolumeClaim"`
		CSI                   map[string]any `yaml:"csi"`
		Ephemeral             map[string]any `yaml:"ephemeral"`
		HostPath              map[string]any `yaml:"hostPath"`
		NFS                   map[string]any `yaml:"nfs"`
		ISCSI                 map[string]any `yaml:"iscsi"`
	}
)

// manifestPath is the Kubernetes manifest.
func manifestPath(t *testing.T) string {
	return filepath.Join(repoRoot(t), "deploy", "kubernetes", "coordinator.yaml")
}

// strictDecode decodes one YAML document into v, refusing fields v does not have.
func strictDecode(doc []byte, v any) error {
	d := yaml.NewDecoder(bytes.NewReader(doc))
	d.KnownFields(true)
	return d.Decode(v)
}

// namedPod is a pod template of the manifest with where it came from.
type namedPod struct {
	where string
	spec  podSpec
}

// manifest is the decoded manifest: its objects by kind and name, and its pod specs.
type manifest struct {
	objects map[string]k8sObject // "Kind/name"
	deploy  map[string]deploymentSpec
	cron    map[string]cronJobSpec
	pods    []namedPod
}

// loadManifest decodes every document of a manifest strictly.
func loadManifest(t *testing.T, data []byte) manifest {
	t.Helper()
	m := manifest{objects: map[string]k8sObject{}, deploy: map[string]deploymentSpec{}, cron: map[string]cronJobSpec{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for i := 0; ; i++ {
		var node yaml.Node
		if err := dec.Decode(&node); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("manifest document %d: %v", i, err)
		}
		doc, err := yaml.Marshal(&node)
		if err != nil {
			t.Fatal(err)
		}
		var obj k8sObject
		if err := strictDecode(doc, &obj); err != nil {
			t.Fatalf("manifest document %d: %v", i, err)
		}
		key := obj.Kind + "/" + obj.Metadata.Name
		if _, dup := m.objects[key]; dup || obj.Metadata.Name == "" {
			t.Fatalf("manifest document %d: %s duplicate or unnamed", i, key)
		}
		m.objects[key] = obj
		spec, err := yaml.Marshal(&obj.Spec)
		if err != nil {
			t.Fatal(err)
		}
		switch obj.Kind {
		case "Deployment":
			var d deploymentSpec
			if err := strictDecode(spec, &d); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			m.deploy[obj.Metadata.Name] = d
			m.pods = append(m.pods, namedPod{key, d.Template.Spec})
		case "CronJob":
			var c cronJobSpec
			if err := strictDecode(spec, &c); err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			m.cron[obj.Metadata.Name] = c
			m.pods = append(m.pods, namedPod{key, c.JobTemplate.Spec.Template.Spec})
		case "ConfigMap":
		default:
			t.Fatalf("%s: kind the test does not know", key)
		}
	}
	return m
}

// restrictedViolations checks a pod spec against the "restricted" Pod Security
// Standard (kubernetes.io/docs/concepts/security/pod-security-standards, v1.30+: the
// baseline controls and the restricted ones), field by field, and returns what fails.
func restrictedViolations(p podSpec) []string {
	var v []string
	bad := func(format string, a ...any) { v = append(v, fmt.Sprintf(format, a...)) }
	// Baseline: host namespaces, host ports, HostProcess, hostPath, sysctls, SELinux,
	// AppArmor, /proc mount, privileged, capabilities beyond the default set.
	if p.HostNetwork || p.HostPID || p.HostIPC {
		bad("host namespaces: hostNetwork/hostPID/hostIPC must be unset or false")
	}
	ps := p.SecurityContext
	if ps.WindowsOptions != nil && ps.WindowsOptions.HostProcess != nil && *ps.WindowsOptions.HostProcess {
		bad("pod: windowsOptions.hostProcess true")
	}
	safeSysctls := []string{"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start", "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports", "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl", "net.ipv4.tcp_keepalive_probes"}
	for _, s := range ps.Sysctls {
		if !slices.Contains(safeSysctls, s.Name) {
			bad("pod: sysctl %s not in the safe set", s.Name)
		}
	}
	checkSELinux("pod", ps.SELinuxOptions, bad)
	checkAppArmor("pod", ps.AppArmor, bad)
	// Restricted: volume types.
	for _, vol := range p.Volumes {
		if vol.HostPath != nil || vol.NFS != nil || vol.ISCSI != nil {
			bad("volume %s: only configMap, csi, downwardAPI, emptyDir, ephemeral, persistentVolumeClaim, projected and secret are allowed", vol.Name)
		}
	}
	// Restricted: runAsNonRoot and seccomp may be set on the pod for all containers.
	podNonRoot := ps.RunAsNonRoot != nil && *ps.RunAsNonRoot
	if ps.RunAsUser != nil && *ps.RunAsUser == 0 {
		bad("pod: runAsUser 0")
	}
	podSeccomp := checkSeccomp("pod", ps.SeccompProfile, bad)
	if len(p.Containers) == 0 {
		bad("no containers")
	}
	for _, c := range append(slices.Clone(p.InitContainers), p.Containers...) {
		checkContainer(c, podNonRoot, podSeccomp, bad)
	}
	return v
}

// checkContainer adds the restricted-level violations of one container.
func checkContainer(c container, podNonRoot, podSeccomp bool, bad func(string, ...any)) {
	s := c.SecurityContext
	where := "container " + c.Name
	if s.Privileged != nil && *s.Privileged {
		bad("%s: privileged", where)
	}
	if s.WindowsOptions != nil && s.WindowsOptions.HostProcess != nil && *s.WindowsOptions.HostProcess {
		bad("%s: windowsOptions.hostProcess true", where)
	}
	for _, p := range c.Ports {
		if p.HostPort != 0 {
			bad("%s: hostPort %d", where, p.HostPort)
		}
	}
	if s.ProcMount != "" && s.ProcMount != "Default" {
		bad("%s: procMount %s", where, s.ProcMount)
	}
	checkSELinux(where, s.SELinuxOptions, bad)
	checkAppArmor(where, s.AppArmor, bad)
	if s.AllowPrivilegeEscalation == nil || *s.AllowPrivilegeEscalation {
		bad("%s: allowPrivilegeEscalation must be set to false", where)
	}
	switch {
	case s.RunAsNonRoot != nil && !*s.RunAsNonRoot:
		bad("%s: runAsNonRoot false", where)
	case s.RunAsNonRoot == nil && !podNonRoot:
		bad("%s: runAsNonRoot must be true (container or pod)", where)
	}
	if s.RunAsUser != nil && *s.RunAsUser == 0 {
		bad("%s: runAsUser 0", where)
	}
	if s.SeccompProfile == nil {
		if !podSeccomp {
			bad("%s: seccompProfile RuntimeDefault or Localhost required (container or pod)", where)
		}
	} else {
		checkSeccomp(where, s.SeccompProfile, bad)
	}
	if s.Capabilities == nil || !slices.Contains(s.Capabilities.Drop, "ALL") {
		bad("%s: capabilities.drop must include ALL", where)
	}
	if s.Capabilities != nil {
		for _, add := range s.Capabilities.Add {
			if add != "NET_BIND_SERVICE" {
				bad("%s: capability %s added (only NET_BIND_SERVICE may be)", where, add)
			}
		}
	}
}

// checkSeccomp adds a violation for an Unconfined or unknown profile and reports
// whether the profile is an allowed one.
func checkSeccomp(where string, s *seccomp, bad func(string, ...any)) bool {
	if s == nil {
		return false
	}
	if s.Type != "RuntimeDefault" && s.Type != "Localhost" {
		bad("%s: seccompProfile.type %q (RuntimeDefault or Localhost)", where, s.Type)
		return false
	}
	return true
}

func checkSELinux(where string, s *seLinux, bad func(string, ...any)) {
	if s == nil {
		return
	}
	if s.User != "" || s.Role != "" {
		bad("%s: seLinuxOptions user/role set", where)
	}
	if s.Type != "" && !slices.Contains([]string{"container_t", "container_init_t", "container_kvm_t", "container_engine_t"}, s.Type) {
		bad("%s: seLinuxOptions.type %s", where, s.Type)
	}
}

func checkAppArmor(where string, a *appArmor, bad func(string, ...any)) {
	if a != nil && a.Type != "RuntimeDefault" && a.Type != "Localhost" {
		bad("%s: appArmorProfile.type %q", where, a.Type)
	}
}

// TestKubernetesRestrictedPodSecurity requires every pod of the manifest to pass the
// restricted Pod Security Standard, and more that the restricted level leaves open: a
// read-only root file system, resource requests and a memory limit, no service
// account token, and a non-root UID that is the Dockerfile's USER.
func TestKubernetesRestrictedPodSecurity(t *testing.T) {
	data, err := os.ReadFile(manifestPath(t))
	if err != nil {
		t.Fatal(err)
	}
	m := loadManifest(t, data)
	if len(m.pods) != 3 {
		t.Errorf("%d pod templates, want the coordinator Deployment and the compact and gc CronJobs", len(m.pods))
	}
	uid, gid := dockerfileUser(t, parseDockerfile(t))
	for _, p := range m.pods {
		for _, v := range restrictedViolations(p.spec) {
			t.Errorf("%s: restricted level: %s", p.where, v)
		}
		if p.spec.AutomountServiceAccountToken == nil || *p.spec.AutomountServiceAccountToken {
			t.Errorf("%s: automountServiceAccountToken must be false (ledgervault never calls the API server)", p.where)
		}
		ps := p.spec.SecurityContext
		for _, c := range p.spec.Containers {
			s := c.SecurityContext
			if s.ReadOnlyRootFilesystem == nil || !*s.ReadOnlyRootFilesystem {
				t.Errorf("%s: container %s: readOnlyRootFilesystem must be true", p.where, c.Name)
			}
			for what, ids := range map[string][]*int64{"runAsUser": {s.RunAsUser, ps.RunAsUser}, "runAsGroup": {s.RunAsGroup, ps.RunAsGroup}} {
				want := uid
				if what == "runAsGroup" {
					want = gid
				}
				for _, id := range ids {
					if id == nil || *id != want {
						t.Errorf("%s: container %s: %s (pod and container) must be the Dockerfile's USER %d", p.where, c.Name, what, want)
					}
				}
			}
			if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
				t.Errorf("%s: container %s: resources need cpu and memory requests and a memory limit: %+v", p.where, c.Name, c.Resources)
			}
			mounted := map[string]bool{}
			for _, vm := range c.VolumeMounts {
				mounted[vm.MountPath] = true
			}
			if !mounted["/tmp"] || !mounted["/etc/ledgervault"] {
				t.Errorf("%s: container %s: mounts %v, want /tmp (read-only root) and /etc/ledgervault (the config file)", p.where, c.Name, mounted)
			}
		}
	}
}

// TestRestrictedCheckRejects feeds the check of TestKubernetesRestrictedPodSecurity the
// coordinator's pod with one restricted rule broken at a time: each must be reported.
func TestRestrictedCheckRejects(t *testing.T) {
	data, err := os.ReadFile(manifestPath(t))
	if err != nil {
		t.Fatal(err)
	}
	base := loadManifest(t, data).deploy["ledgervault-backup-coordinator"].Template.Spec
	if v := restrictedViolations(base); len(v) != 0 {
		t.Fatalf("the manifest's pod fails: %v", v)
	}
	yes, no, root := true, false, int64(0)
	cases := map[string]func(p *podSpec){
		"hostNetwork":              func(p *podSpec) { p.HostNetwork = true },
		"hostPath volume":          func(p *podSpec) { p.Volumes[0].HostPath = map[string]any{"path": "/"} },
		"privileged":               func(p *podSpec) { p.Containers[0].SecurityContext.Privileged = &yes },
		"privilege escalation":     func(p *podSpec) { p.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil },
		"capability added":         func(p *podSpec) { p.Containers[0].SecurityContext.Capabilities.Add = []string{"SYS_ADMIN"} },
		"capabilities not dropped": func(p *podSpec) { p.Containers[0].SecurityContext.Capabilities.Drop = []string{"NET_RAW"} },
		"root user":                func(p *podSpec) { p.Containers[0].SecurityContext.RunAsUser = &root },
		"runAsNonRoot false":       func(p *podSpec) { p.Containers[0].SecurityContext.RunAsNonRoot = &no },
		"runAsNonRoot unset": func(p *podSpec) {
			p.Containers[0].SecurityContext.RunAsNonRoot, p.SecurityContext.RunAsNonRoot = nil, nil
		},
		"seccomp unconfined": func(p *podSpec) { p.Containers[0].SecurityContext.SeccompProfile = &seccomp{Type: "Unconfined"} },
		"seccomp unset": func(p *podSpec) {
			p.Containers[0].SecurityContext.SeccompProfile, p.SecurityContext.SeccompProfile = nil, nil
		},
		"hostPort":      func(p *podSpec) { p.Containers[0].Ports[0].HostPort = 9187 },
		"unsafe sysctl": func(p *podSpec) { p.SecurityContext.Sysctls = []nameValue{{"kernel.msgmax", "1"}} },
		"procMount":     func(p *podSpec) { p.Containers[0].SecurityContext.ProcMount = "Unmasked" },
		"init container": func(p *podSpec) {
			p.InitContainers = []container{{Name: "init"}}
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			// Decode again: the mutations must not share slices or pointers with base.
			p := loadManifest(t, data).deploy["ledgervault-backup-coordinator"].Template.Spec
			mutate(&p)
			if v := restrictedViolations(p); len(v) == 0 {
				t.Errorf("not reported")
			} else {
				t.Logf("reported: %v", v)
			}
		})
	}
}

// TestKubernetesImageIsTheDockerfiles requires every container to run the image the
// Dockerfile builds (its io.github.ledgervault.image label) at a release tag.
func TestKubernetesImageIsTheDockerfiles(t *testing.T) {
	data, err := os.ReadFile(manifestPath(t))
	if err != nil {
		t.Fatal(err)
	}
	name := parseDockerfile(t).final().labels["io.github.ledgervault.image"]
	if name == "" {
		t.Fatal("the Dockerfile's final stage has no io.github.ledgervault.image label")
	}
	for _, p := range loadManifest(t, data).pods {
		for _, c := range p.spec.Containers {
			repo, tag, ok := strings.Cut(c.Image, ":")
			if repo != name || !ok || tag == "" || tag == "latest" {
				t.Errorf("%s: container %s: image %q, want %s:<release tag> (not latest)", p.where, c.Name, c.Image, name)
			}
			if c.ImagePullPolicy != "IfNotPresent" {
				t.Errorf("%s: container %s: imagePullPolicy %q, want IfNotPresent for a release tag", p.where, c.Name, c.ImagePullPolicy)
			}
		}
	}
}

// TestKubernetesProbesAndJobs checks the coordinator's probes against the handler the
// coordinator serves (each path answers, on the port of --metrics-addr), and that
// compact and gc run as CronJobs one at a time.
func TestKubernetesProbesAndJobs(t *testing.T) {
	data, err := os.ReadFile(manifestPath(t))
	if err != nil {
		t.Fatal(err)
	}
	m := loadManifest(t, data)
	d, ok := m.deploy["ledgervault-backup-coordinator"]
	if !ok || d.Replicas != 1 || d.Strategy.Type != "Recreate" {
		t.Fatalf("coordinator Deployment: %+v, want 1 replica and Recreate (one lease holder)", d)
	}
	c := d.Template.Spec.Containers[0]
	srv := httptest.NewServer(coordinator.NewMetrics().Handler())
	defer srv.Close()
	want := map[string]string{"startupProbe": "/livez", "livenessProbe": "/livez", "readinessProbe": "/healthz"}
	for name, p := range map[string]*probe{"startupProbe": c.StartupProbe, "livenessProbe": c.LivenessProbe, "readinessProbe": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s missing or not httpGet", name)
			continue
		}
		if p.HTTPGet.Path != want[name] {
			t.Errorf("%s path %s, want %s", name, p.HTTPGet.Path, want[name])
		}
		resp, err := http.Get(srv.URL + p.HTTPGet.Path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		// A coordinator that has not started answers 503, not 404.
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s: %s answers %d, want the health handler's 503 before the loop runs", name, p.HTTPGet.Path, resp.StatusCode)
		}
		var port int
		for _, cp := range c.Ports {
			if cp.Name == p.HTTPGet.Port {
				port = cp.ContainerPort
			}
		}
		if port == 0 || !slices.Contains(c.Args, "--metrics-addr=:"+strconv.Itoa(port)) {
			t.Errorf("%s: port %q is not the container port of --metrics-addr in %v", name, p.HTTPGet.Port, c.Args)
		}
	}
	for _, job := range []string{"compact", "gc"} {
		cj, ok := m.cron["ledgervault-backup-"+job]
		if !ok {
			t.Errorf("no CronJob ledgervault-backup-%s", job)
			continue
		}
		args := cj.JobTemplate.Spec.Template.Spec.Containers[0].Args
		if cj.ConcurrencyPolicy != "Forbid" || len(args) == 0 || args[0] != job || cj.Schedule == "" {
			t.Errorf("CronJob %s: schedule %q concurrency %q args %v, want a schedule, Forbid and %s", job, cj.Schedule, cj.ConcurrencyPolicy, args, job)
		}
		if r := cj.JobTemplate.Spec.Template.Spec.RestartPolicy; r != "Never" && r != "OnFailure" {
			t.Errorf("CronJob %s: restartPolicy %q", job, r)
		}
	}
}

// TestKubernetesArgsAndConfigAreTheBinarys runs the real binary with every container's
// arguments (with --help: cobra parses and checks them, then prints help) and with the
// ConfigMap's ledgervault.yml, which the binary checks against every command on any run
// (docs/configuration.md, Strictness): an unknown flag or key exits 2.
func TestKubernetesArgsAndConfigAreTheBinarys(t *testing.T) {
	data, err := os.ReadFile(manifestPath(t))
	if err != nil {
		t.Fatal(err)
	}
	m := loadManifest(t, data)
	dir := t.TempDir()
	for _, p := range m.pods {
		for _, c := range p.spec.Containers {
			r := testbin.Run(t, dir, append(slices.Clone(c.Args), "--help")...)
			if r.Code != 0 {
				t.Errorf("%s: container %s: ledgervault %v --help: exit %d\n%s", p.where, c.Name, c.Args, r.Code, r.Stderr)
			}
		}
	}
	cm, ok := m.objects["ConfigMap/ledgervault"]
	if !ok || cm.Data["ledgervault.yml"] == "" {
		t.Fatal("no ConfigMap ledgervault with ledgervault.yml")
	}
	conf := filepath.Join(dir, "ledgervault.yml")
	if err := os.WriteFile(conf, []byte(cm.Data["ledgervault.yml"]), 0o600); err != nil {
		t.Fatal(err)
	}
	// The file's values reach the commands: `version` reads none, `gc --dry-run` with a
	// storage URL the flag overrides (the file's s3:// bucket is not reachable here).
	// gc only maintains an existing store (exit 10 otherwise): an empty one is a
	// metadata folder.
	store := "file://" + filepath.Join(dir, "store")
	if err := os.MkdirAll(filepath.Join(dir, "store", "metadata"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"--config", conf, "version"}, {"--config", conf, "gc", "--dry-run", "--allow-no-metadata", "--storage", store}} {
		r := testbin.Run(t, dir, args...)
		if r.Code != 0 {
			t.Errorf("ledgervault %v: exit %d\n%s%s", args, r.Code, r.Stdout, r.Stderr)
		}
	}
}
