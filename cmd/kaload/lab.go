package main

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/kaload/kaload/internal/lab"
	"github.com/kaload/kaload/pkg/report"
)

type labOptions struct {
	MaxRequests []int
	MaxConnAge  []time.Duration
	Protocol    string
	Pods        string
	ScaleAt     time.Duration
	HPA         bool
	TargetRPS   float64
	MaxPods     int
	Sync        time.Duration
	PodCapacity float64
	Rate        float64
	Connections int
	Duration    time.Duration
	Timeout     time.Duration
	Balancer    string
	Seed        uint64
	Interval    time.Duration
	Target      time.Duration // --target-rebalance
	Format      string
	OutDir      string
	Expect      []string
}

func newCmdLab(s *streams, runF func(context.Context, *labOptions) error) *cobra.Command {
	o := &labOptions{}
	cmd := &cobra.Command{
		Use:   "lab",
		Short: "Reproduce the keep-alive scale-up failure and its fix on this machine",
		Long: `lab rebuilds a Kubernetes scale-up in one process on loopback, no cluster needed:

  pods      kaload servers on 127.0.0.1 (pod-1, pod-2, ...), each serving at most
            --pod-capacity requests/s; beyond it requests queue, so a hot pod
            shows up as latency
  Service   an L4 balancer that, like kube-proxy, picks a pod only when a
            connection opens (random = iptables/nftables mode, roundrobin = IPVS)
            and then just copies bytes
  client    kaload's keep-alive engine sending a fixed --rate through the Service
  scale-up  a fixed event (--pods 1:3 --scale-at 5s) or, with --hpa, an emulated
            HorizontalPodAutoscaler: desired = ceil(pods * avg / target), 10%
            tolerance, default scale-up policy, all Kubernetes periods shrunk by
            --sync/15s; it reads requests/s from the pods' own counters

Each --max-requests (and --max-conn-age) value is one scenario; all run one
after the other with identical load. Without recycling the new pods never see
a request; with it they get their fair share within about a second.

--expect applies to the window after each scenario's last scale event.
Write it as EXPR (every scenario) or SCENARIO:EXPR, where SCENARIO is a
scenario name such as max-requests=5 or max-conn-age=2s; metrics are those
of 'kaload report' (min_share, jain, p99, share(pod-2), ...). A failed
expectation exits with code 3 after the report is printed.

` + report.RulesHelp(),
		Example: `  # the whole experiment, about 25 seconds
  kaload lab

  # the original failure: an HPA adds pods that keep-alive clients never reach
  kaload lab --hpa --target-rps-per-pod 100 --max-pods 5 --sync 2s

  # compare three settings, IPVS-like balancing, keep the results files
  kaload lab --max-requests 0,5,100 --balancer roundrobin -o lab-results

  # WebSockets: sticky sockets without recycling, rebalanced by an age limit
  kaload lab --protocol ws --max-conn-age 2s
  kaload lab --protocol grpc --max-requests 0,50 --max-conn-age 2s

  # One page to share: the scenarios side by side on the same axes
  kaload lab --format html > lab.html

  # CI: fail unless recycling gives the new pods a fair part
  kaload lab --format json --expect 'max-requests=5:min_share>=0.25'`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("max-requests") && cmd.Flags().Changed("max-conn-age") {
				// --max-conn-age alone compares against no recycling only.
				o.MaxRequests = []int{0}
			}
			if o.Protocol == "ws" && !cmd.Flags().Changed("max-requests") && !cmd.Flags().Changed("max-conn-age") {
				// Sockets: sticky without recycling against an age limit.
				o.MaxRequests, o.MaxConnAge = []int{0}, []time.Duration{2 * time.Second}
			}
			if runF != nil {
				return runF(cmd.Context(), o)
			}
			return runLab(cmd.Context(), s, o)
		},
	}
	f := cmd.Flags()
	f.Var(newIntList(&o.MaxRequests, []int{0, 5}), "max-requests", "scenarios: pods close a connection after N responses (0 = never); a comma-separated list")
	f.Var(newDurationList(&o.MaxConnAge, nil), "max-conn-age", "more scenarios: pods close connections older than D; a comma-separated list")
	f.StringVar(&o.Pods, "pods", "1:3", "pod count START:END for the fixed scale event (with --hpa: START is minReplicas)")
	f.DurationVar(&o.ScaleAt, "scale-at", 5*time.Second, "when the fixed scale event happens, from the start of each scenario")
	f.BoolVar(&o.HPA, "hpa", false, "scale with an emulated HorizontalPodAutoscaler instead of the fixed event")
	f.Float64Var(&o.TargetRPS, "target-rps-per-pod", 100, "HPA target: average requests/s per pod")
	f.IntVar(&o.MaxPods, "max-pods", 5, "HPA maxReplicas")
	f.DurationVar(&o.Sync, "sync", 2*time.Second, "HPA sync period (Kubernetes: 15s); policy periods and windows shrink with it")
	f.Float64Var(&o.PodCapacity, "pod-capacity", 150, "requests/s one pod serves before requests queue (0 = unlimited)")
	f.Float64Var(&o.Rate, "rate", 200, "total requests/s sent through the Service, the same in every scenario")
	f.IntVarP(&o.Connections, "connections", "c", 10, "keep-alive connections the client keeps open")
	f.DurationVarP(&o.Duration, "duration", "d", 12*time.Second, "length of each scenario")
	f.DurationVar(&o.Timeout, "timeout", 10*time.Second, "per-request timeout")
	f.StringVar(&o.Protocol, "protocol", "http", "http; ws: WebSockets (default scenarios: no recycling vs --max-conn-age 2s), judged by the sockets new pods hold; grpc: unary RPCs, pods recycling with GOAWAY")
	f.StringVar(&o.Balancer, "balancer", "random", "how the Service picks a pod per connection: random (iptables, nftables) or roundrobin (IPVS)")
	f.Uint64Var(&o.Seed, "seed", 1, "seed of the balancer's random choices")
	f.DurationVar(&o.Interval, "interval", time.Second, "width of one timeline bucket")
	f.DurationVar(&o.Target, "target-rebalance", report.DefaultTargetRebalance, "recommend recycling reaching fair share within `D`")
	f.StringVar(&o.Format, "format", "table", "output format: table, json or html (one self-contained page, the scenarios side by side on the same axes)")
	f.StringVarP(&o.OutDir, "output", "o", "", "directory to keep each scenario's results file in (for kaload report)")
	f.StringArrayVar(&o.Expect, "expect", nil, "assertion on the window after the last scale event, [SCENARIO:]EXPR (repeatable)")
	return cmd
}

// labConfig turns flags into a lab.Config; every error is a usage error.
func (o *labOptions) labConfig() (lab.Config, error) {
	cfg := lab.Config{
		Protocol:    o.Protocol,
		Duration:    o.Duration,
		Connections: o.Connections,
		Rate:        o.Rate,
		Timeout:     o.Timeout,
		PodCapacity: o.PodCapacity,
		Seed:        o.Seed,
		ScaleAt:     o.ScaleAt,
		Interval:    o.Interval,
		Target:      o.Target,
		ResultsDir:  o.OutDir,
		Version:     versionString(),
	}
	if o.Format != "table" && o.Format != "json" && o.Format != "html" {
		return cfg, fmt.Errorf("--format: unknown format %q (want table, json or html)", o.Format)
	}
	p, err := lab.ParsePolicy(o.Balancer)
	if err != nil {
		return cfg, fmt.Errorf("--balancer: %w", err)
	}
	cfg.Policy = p
	start, end, err := parsePods(o.Pods)
	if err != nil {
		return cfg, err
	}
	cfg.StartPods, cfg.EndPods = start, end
	if o.HPA {
		cfg.HPA = &lab.HPAConfig{TargetRPSPerPod: o.TargetRPS, MaxPods: o.MaxPods, Sync: o.Sync}
	}
	for _, n := range o.MaxRequests {
		cfg.Scenarios = append(cfg.Scenarios, lab.Scenario{Name: lab.ScenarioName(n, 0), MaxRequests: n})
	}
	for _, d := range o.MaxConnAge {
		if d <= 0 {
			return cfg, fmt.Errorf("--max-conn-age: %s must be > 0", d)
		}
		cfg.Scenarios = append(cfg.Scenarios, lab.Scenario{Name: lab.ScenarioName(0, d), MaxConnAge: d})
	}
	if cfg.Expect, err = parseLabExpect(o.Expect, cfg.Scenarios); err != nil {
		return cfg, err
	}
	return cfg, namedByFlags("lab", cfg.Validate(), nil)
}

// parsePods reads "START:END" (or "N", meaning no fixed scale-up).
func parsePods(s string) (start, end int, err error) {
	a, b, found := strings.Cut(s, ":")
	start, err = strconv.Atoi(strings.TrimSpace(a))
	if err == nil && found {
		end, err = strconv.Atoi(strings.TrimSpace(b))
	} else {
		end = start
	}
	if err != nil || start < 1 || end < 1 {
		return 0, 0, fmt.Errorf("--pods: want START:END pod counts such as 1:3, got %q", s)
	}
	return start, end, nil
}

// parseLabExpect splits "[SCENARIO:]EXPR" and parses EXPR with kaload
// report's grammar.
func parseLabExpect(exprs []string, scs []lab.Scenario) (map[string][]report.Expectation, error) {
	if len(exprs) == 0 {
		return nil, nil
	}
	var names []string
	for _, sc := range scs {
		names = append(names, sc.Name)
	}
	out := map[string][]report.Expectation{}
	for _, e := range exprs {
		scope, expr := "", e
		// A backend name may hold a colon (share(127.0.0.1:8080)), so only a
		// prefix naming a scenario scopes the expression.
		if pre, rest, ok := strings.Cut(e, ":"); ok {
			switch {
			case slices.Contains(names, pre):
				scope, expr = pre, rest
			case strings.HasPrefix(pre, "max-"):
				return nil, fmt.Errorf("--expect %q: no scenario named %q (scenarios: %s)", e, pre, strings.Join(names, ", "))
			}
		}
		x, err := report.ParseExpectation(expr)
		if err != nil {
			return nil, fmt.Errorf("--expect %q: %w", e, err)
		}
		out[scope] = append(out[scope], x)
	}
	return out, nil
}

func runLab(ctx context.Context, s *streams, o *labOptions) error {
	cfg, err := o.labConfig()
	if err != nil {
		return usageErrorf("%w", err)
	}
	if s.ErrTTY {
		cfg.OnScenario = func(i int, sc lab.Scenario) {
			fmt.Fprintf(s.Err, "kaload lab: scenario %d/%d %s (%s)...\n", i+1, len(cfg.Scenarios), sc.Name, cfg.Duration)
		}
	}
	res, err := lab.Run(ctx, cfg)
	if err != nil {
		if ctx.Err() == nil || res == nil {
			return namedByFlags("lab", err, nil)
		}
		// Interrupted: show what ran (the last scenario was cut short).
		if len(res.Scenarios) > 0 {
			if rerr := renderLab(s, o.Format, res); rerr != nil {
				return rerr
			}
		}
		return fmt.Errorf("lab interrupted during scenario %d of %d: %w", max(len(res.Scenarios), 1), len(cfg.Scenarios), ctx.Err())
	}
	if err := renderLab(s, o.Format, res); err != nil {
		return err
	}
	if !res.ExpectOK() {
		// In JSON the verdicts are in the object; still tell the person, as report does.
		if o.Format != "table" {
			for _, sc := range res.Scenarios {
				for _, e := range sc.AfterScale.Expectations {
					if !e.OK {
						fmt.Fprintf(s.Err, "kaload: %s: %s %s (actual %s)\n", sc.Name, e.Status, e.Expr, e.Actual)
					}
				}
			}
		}
		return errExpectFailed
	}
	return nil
}

func renderLab(s *streams, format string, res *lab.Result) error {
	switch format {
	case "json":
		return lab.RenderJSON(s.Out, res)
	case "html":
		return lab.RenderHTML(s.Out, res)
	}
	return lab.RenderTable(s.Out, res)
}
