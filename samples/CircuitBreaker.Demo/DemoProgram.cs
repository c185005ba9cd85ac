using CircuitBreaker.Demo.Display;
using CircuitBreaker.Demo.Drill;
using CircuitBreaker.Demo.Scenario;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;
using Spectre.Console;

namespace CircuitBreaker.Demo;

/// <summary>What a run of the demo ended with.</summary>
/// <param name="ExitCode">0 when the drill's checks passed, 1 when one failed, 2 for a bad option or setting, 130 on Ctrl+C.</param>
/// <param name="Summary">The drill's summary, when it ran.</param>
public sealed record DemoResult(int ExitCode, DrillSummary? Summary);

/// <summary>The demo, callable in-process: <c>Program.Main</c> runs it on the console, tests on a <see cref="StringWriter"/>.</summary>
public static class DemoProgram
{
    /// <summary>The demo's settings file in the output folder: the project's appsettings.json, copied under this name.</summary>
    public const string SettingsFileName = "CircuitBreaker.Demo.settings.json";

    /// <summary>Runs the demo and returns its exit code.</summary>
    public static async Task<int> RunAsync(string[] args, TextWriter output, CancellationToken cancellationToken) =>
        (await ExecuteAsync(args, output, cancellationToken)).ExitCode;

    /// <summary>Runs the demo and returns its exit code and the drill's summary.</summary>
    /// <param name="args">The command line (see <see cref="DemoOptions.Usage"/>).</param>
    /// <param name="output">Where to write; the live view is used only when this is the console's own, undirected output.</param>
    /// <param name="cancellationToken">Ctrl+C: ends the drill early, or the serving after it with <c>--prometheus</c>.</param>
    public static async Task<DemoResult> ExecuteAsync(IReadOnlyList<string> args, TextWriter output, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(output);
        DemoOptions options;
        IConfiguration configuration;
        DrillScenario scenario;
        DrillSettings settings;
        try
        {
            options = DemoOptions.Parse(args);
            if (options.Help)
            {
                await output.WriteLineAsync(DemoOptions.Usage);
                return new DemoResult(0, null);
            }

            configuration = LoadConfiguration(options);
            settings = configuration.GetSection("Drill").Get<DrillSettings>() ?? new DrillSettings();
            settings.Validate();
            scenario = options.ScenarioFile is { } file
                ? ScenarioReader.FromFile(FindScenario(file))
                : ScenarioReader.FromSection(configuration.GetSection("Drill:Scenario"), "default");
            if (options.Duration is { } duration)
            {
                scenario = scenario.ScaledTo(duration);
            }
        }
        catch (Exception ex) when (ex is FormatException or ScenarioException or InvalidOperationException or IOException or InvalidDataException)
        {
            await output.WriteLineAsync($"error: {ex.Message}");
            return new DemoResult(2, null);
        }

        var view = CreateView(options, output, settings);
        try
        {
            await using var drill = await OutageDrill.StartAsync(options, configuration, scenario, settings, view, cancellationToken);
            var endpoints = Endpoints(options, drill.AppAddress);
            view.Starting(drill.Intro(endpoints));

            var run = drill.RunAsync(cancellationToken);
            await view.FollowAsync(drill.Status, run);
            var summary = await run;
            view.Summary(summary);

            if (options.Prometheus && !summary.Interrupted)
            {
                view.Message($"The drill is over. Still serving {string.Join(" and ", endpoints)}; press Ctrl+C to stop.");
                await WaitForCtrlCAsync(cancellationToken);
            }

            return new DemoResult(summary.Interrupted ? 130 : summary.Passed ? 0 : 1, summary);
        }
        catch (Exception ex) when (InvalidOptions(ex) is { Count: > 0 } messages)
        {
            // ValidateOnStart reports every invalid client at once, in an AggregateException.
            foreach (var message in messages)
            {
                await output.WriteLineAsync($"error: invalid settings: {message}");
            }

            return new DemoResult(2, null);
        }
        catch (IOException ex) when (options.Prometheus)
        {
            await output.WriteLineAsync($"error: cannot listen on 127.0.0.1:{options.PrometheusPort} for --prometheus: {ex.Message}");
            return new DemoResult(2, null);
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            return new DemoResult(130, null);
        }
    }

    private static List<string> InvalidOptions(Exception exception) => exception switch
    {
        OptionsValidationException invalid => [.. invalid.Failures],
        AggregateException all when all.InnerExceptions.All(e => e is OptionsValidationException) =>
            all.InnerExceptions.Cast<OptionsValidationException>().SelectMany(e => e.Failures).Distinct().ToList(),
        _ => [],
    };

    /// <summary>appsettings.json (as copied to the output folder), environment variables, then <c>--Section:Key=value</c> overrides.</summary>
    private static IConfigurationRoot LoadConfiguration(DemoOptions options) =>
        new ConfigurationBuilder()
            .AddJsonFile(Path.Combine(AppContext.BaseDirectory, SettingsFileName), optional: false, reloadOnChange: false)
            .AddEnvironmentVariables()
            .AddCommandLine([.. options.ConfigurationOverrides])
            .Build();

    /// <summary>A scenario file as given, or else in the demo's output folder, or its scenarios folder (so <c>--scenario quick</c> works).</summary>
    private static string FindScenario(string file)
    {
        string[] candidates =
        [
            file,
            Path.Combine(AppContext.BaseDirectory, file),
            Path.Combine(AppContext.BaseDirectory, "scenarios", file),
            Path.Combine(AppContext.BaseDirectory, "scenarios", file + ".json"),
        ];
        return candidates.FirstOrDefault(File.Exists) ?? throw new FileNotFoundException($"Scenario file '{file}' not found.", file);
    }

    private static IDrillView CreateView(DemoOptions options, TextWriter output, DrillSettings settings)
    {
        if (!options.NoColor && ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected)
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(output) });
            if (console.Profile.Capabilities.Ansi && console.Profile.Capabilities.Interactive)
            {
                return new LiveView(console);
            }
        }

        return new PlainView(output, settings.StatusInterval);
    }

    private static List<string> Endpoints(DemoOptions options, Uri app) =>
        options.Prometheus
            ? [$"metrics {new Uri(app, "/metrics")}", $"health {new Uri(app, "/health")}"]
            : [];

    private static async Task WaitForCtrlCAsync(CancellationToken cancellationToken)
    {
        try
        {
            await Task.Delay(Timeout.Infinite, cancellationToken);
        }
        catch (OperationCanceledException)
        {
        }
    }
}
