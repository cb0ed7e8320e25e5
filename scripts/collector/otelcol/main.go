// Command otelcol-beetrace is the smallest real OpenTelemetry Collector that checks beetrace's
// OTLP output: the core otlp receiver (OTLP/HTTP protobuf and JSON, OTLP/gRPC) and the contrib
// file exporter (what it received, as OTLP JSON lines or length-prefixed protobuf), wired the
// way the Collector Builder (go.opentelemetry.io/collector/cmd/builder) wires a distribution.
// Built by scripts/collector/build.sh into .cache/collector/; used by tests/e2e/collector.test.ts
// and bench/soak.bench.ts. Versions are pinned by go.mod/go.sum beside this file.
//
// The contrib otlpjsonfile receiver is not added: the module proxy does not serve it
// (scripts/collector/build.sh says how that was checked).
package main

import (
	"context"
	"fmt"
	"os"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/provider/envprovider"
	"go.opentelemetry.io/collector/confmap/provider/fileprovider"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/otelcol"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/otlpreceiver"
	"go.opentelemetry.io/collector/service/telemetry"
	"go.uber.org/zap"

	"github.com/open-telemetry/opentelemetry-collector-contrib/exporter/fileexporter"
)

// factories lists the components.
func factories() (otelcol.Factories, error) {
	f := otelcol.Factories{Telemetry: newTelemetryFactory()}
	var err error
	if f.Receivers, err = otelcol.MakeFactoryMap[receiver.Factory](otlpreceiver.NewFactory()); err != nil {
		return otelcol.Factories{}, err
	}
	if f.Exporters, err = otelcol.MakeFactoryMap[exporter.Factory](fileexporter.NewFactory()); err != nil {
		return otelcol.Factories{}, err
	}
	return f, nil
}

// The Collector's own telemetry: logs to stderr (the tests wait for its "Everything is ready"
// line), no internal metrics or traces (the telemetry package's no-op defaults). The builder's
// default, otelconftelemetry, brings cloud resource detectors (AWS, GCP, Azure, Kubernetes
// clients) and metric/trace exporters we never use: about 200 more packages to compile, which
// roughly doubles a fresh build. So a config here has no service::telemetry section.
type telemetryConfig struct{}

func newTelemetryFactory() telemetry.Factory {
	return telemetry.NewFactory(
		func() component.Config { return &telemetryConfig{} },
		telemetry.WithCreateLogger(func(_ context.Context, set telemetry.LoggerSettings, _ component.Config) (*zap.Logger, component.ShutdownFunc, error) {
			cfg := zap.NewProductionConfig() // info level, stderr
			cfg.Encoding = "console"
			cfg.Sampling = nil // every line: a test may wait for any of them
			build := set.BuildZapLogger
			if build == nil {
				build = func(c zap.Config, opts ...zap.Option) (*zap.Logger, error) { return c.Build(opts...) }
			}
			l, err := build(cfg)
			return l, nil, err
		}),
	)
}

func main() {
	settings := otelcol.CollectorSettings{
		BuildInfo: component.BuildInfo{
			Command:     "otelcol-beetrace",
			Description: "OpenTelemetry Collector for beetrace's tests (otlp receiver, file exporter)",
			Version:     "0.165.0-beetrace",
		},
		Factories: factories,
		// `--config PATH` is read by the file provider; ${VAR} / ${env:VAR} in it by the env
		// provider (otelcol.NewCommand makes "env" the default scheme and requires it).
		ConfigProviderSettings: otelcol.ConfigProviderSettings{
			ResolverSettings: confmap.ResolverSettings{
				ProviderFactories: []confmap.ProviderFactory{envprovider.NewFactory(), fileprovider.NewFactory()},
			},
		},
	}
	if err := otelcol.NewCommand(settings).Execute(); err != nil {
		// cobra has already printed the error; the exit status is what callers check.
		fmt.Fprintln(os.Stderr, "otelcol-beetrace:", err)
		os.Exit(1)
	}
}
