using System.Globalization;

namespace CircuitBreaker.Demo;

/// <summary>The demo's command line.</summary>
public sealed record DemoOptions
{
    /// <summary>The command-line help.</summary>
    public const string Usage = """
        Usage: dotnet run --project samples/CircuitBreaker.Demo [-- options]

        A live outage drill: two downstream services on 127.0.0.1 fail in scripted ways (5xx bursts, slow answers,
        refused connections) and recover, while concurrent callers go through HttpClients with a circuit breaker.

          --duration SECONDS     stretch or shrink the timeline to this length (default: as the scenario says, 30 s)
          --scenario FILE        play the timeline in FILE (same shape as Drill:Scenario in appsettings.json),
                                 e.g. samples/CircuitBreaker.Demo/scenarios/quick.json
          --no-color             plain lines instead of the live view (also when output is redirected)
          --prometheus           serve /metrics (OpenTelemetry Prometheus exporter) and /health on
                                 http://127.0.0.1:9464, and keep serving after the drill until Ctrl+C or SIGTERM
          --prometheus-port N    the port for --prometheus (default 9464; 0 picks a free one)
          --otlp ENDPOINT        export metrics and traces over OTLP: gRPC, or HTTP/protobuf when the port is 4318
                                 (e.g. http://127.0.0.1:4317)
          --Section:Key=VALUE    override any appsettings.json value, e.g. --CircuitBreaker:FailureThreshold=3
          --help                 show this help

        Exit code: 0 when the drill's checks pass, 1 when one fails, 2 for a bad option or setting, 130 on Ctrl+C or SIGTERM.
        """;

    /// <summary>Gets the length to scale the timeline to, or <see langword="null"/> to keep it.</summary>
    public TimeSpan? Duration { get; init; }

    /// <summary>Gets the scenario file to play instead of <c>Drill:Scenario</c>.</summary>
    public string? ScenarioFile { get; init; }

    /// <summary>Gets whether to print plain lines instead of the live view.</summary>
    public bool NoColor { get; init; }

    /// <summary>Gets whether to serve <c>/metrics</c> and keep running after the drill.</summary>
    public bool Prometheus { get; init; }

    /// <summary>Gets the port of <c>/metrics</c> and <c>/health</c> with <see cref="Prometheus"/>.</summary>
    public int PrometheusPort { get; init; } = 9464;

    /// <summary>Gets the OTLP endpoint to export to, if any.</summary>
    public Uri? Otlp { get; init; }

    /// <summary>Gets whether to print the help and exit.</summary>
    public bool Help { get; init; }

    /// <summary>Gets the configuration overrides, as <c>--Section:Key=value</c> arguments for the command-line provider.</summary>
    public IReadOnlyList<string> ConfigurationOverrides { get; init; } = [];

    /// <summary>Parses the command line.</summary>
    /// <exception cref="FormatException">An unknown option or a bad value; the message says which.</exception>
    public static DemoOptions Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        var options = new DemoOptions();
        var overrides = new List<string>();
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            string Value() => i + 1 < args.Count ? args[++i] : throw new FormatException($"{arg} needs a value.");
            options = arg switch
            {
                "--duration" => options with { Duration = TimeSpan.FromSeconds(PositiveSeconds(arg, Value())) },
                "--scenario" => options with { ScenarioFile = Value() },
                "--no-color" => options with { NoColor = true },
                "--prometheus" => options with { Prometheus = true },
                "--prometheus-port" => options with { PrometheusPort = Port(arg, Value()) },
                "--otlp" => options with { Otlp = Endpoint(arg, Value()) },
                "--help" or "-h" or "-?" => options with { Help = true },
                _ when arg.StartsWith("--", StringComparison.Ordinal) && arg.Contains(':', StringComparison.Ordinal) => Override(options, arg, overrides, Value),
                _ => throw new FormatException($"Unknown option '{arg}'. Try --help."),
            };
        }

        return options with { ConfigurationOverrides = overrides };
    }

    private static DemoOptions Override(DemoOptions options, string arg, List<string> overrides, Func<string> value)
    {
        overrides.Add(arg.Contains('=', StringComparison.Ordinal) ? arg : $"{arg}={value()}");
        return options;
    }

    private static double PositiveSeconds(string option, string text) =>
        double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) && seconds is > 0 and <= 3600
            ? seconds
            : throw new FormatException($"{option} takes a number of seconds, above 0 and at most 3600; got '{text}'.");

    private static int Port(string option, string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var port) && port <= 65535
            ? port
            : throw new FormatException($"{option} takes a port number, 0 to 65535; got '{text}'.");

    private static Uri Endpoint(string option, string text) =>
        Uri.TryCreate(text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
            ? uri
            : throw new FormatException($"{option} takes an http:// or https:// address such as http://127.0.0.1:4317; got '{text}'.");
}
