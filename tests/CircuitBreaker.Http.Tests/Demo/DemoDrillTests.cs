using System.Diagnostics;
using CircuitBreaker.Demo;
using CircuitBreaker.Demo.Drill;

namespace CircuitBreaker.Http.Tests.Demo;

/// <summary>
/// Runs alone, after the parallel tests: the drill is timed in seconds of real time, and its OpenTelemetry
/// providers listen to the breaker's meter and source while it runs.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class DemoDrillGroup
{
    public const string Name = "The demo's outage drill";
}

/// <summary>
/// The demo end to end, in-process: the quick scenario (about 6 s: healthy, 5xx, slow, refused connections,
/// recovery, for two services on real Kestrel servers), with plain output, and the summary's numbers checked.
/// </summary>
[Collection(DemoDrillGroup.Name)]
public sealed class DemoDrillTests
{
    [Fact]
    public async Task QuickScenario_EveryRequestAccountedFor_NothingLetThroughWhileOpen_EveryTransitionHappens()
    {
        var scenario = Path.Combine(AppContext.BaseDirectory, "scenarios", "quick.json");
        using var output = new StringWriter();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var clock = Stopwatch.StartNew();

        var result = await DemoProgram.ExecuteAsync(["--scenario", scenario, "--no-color"], output, timeout.Token);

        var text = output.ToString();
        Assert.True(result.ExitCode == 0, $"exit code {result.ExitCode}:\n{text}");
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"the drill took {clock.Elapsed}:\n{text}");
        var summary = Assert.IsType<DrillSummary>(result.Summary);
        Assert.False(summary.Interrupted);
        Assert.All(summary.Checks, c => Assert.True(c.Passed, $"{c.Name}: {c.Detail}\n{text}"));
        Assert.Equal(["users", "orders"], summary.Hosts.Select(h => h.Service));

        foreach (var host in summary.Hosts)
        {
            var c = host.Client;

            // Every request accounted for exactly once, and the breaker kept a real share off the downstream.
            Assert.True(c.Sent > 0, $"{host.Service}: no traffic");
            Assert.Equal(c.Sent, c.DownstreamOk + c.DownstreamError + c.Cache + c.Alternate + c.Degraded + c.Custom + c.Rejected + c.FailedTimeout + c.FailedConnection + c.FailedOther);
            Assert.Equal(0, c.Cancelled);
            Assert.True(c.KeptOff > 0, $"{host.Service}: the breaker kept nothing off the downstream");
            Assert.True(c.Cache > 0, $"{host.Service}: the cache never answered\n{text}");

            // The downstream's own count equals what the callers saw of it, and the two sides agree call by call
            // (an answer can only go missing when it came after the AttemptTimeout; that is counted apart).
            Assert.Equal(host.Server.Answered, c.Downstream + host.AnsweredTooLate);
            Assert.Equal(host.Server.Received, host.Server.Answered + host.Server.Abandoned);
            Assert.Equal(0, host.Mismatched);
            Assert.Equal(c.LetThrough, host.Admitted);

            // Nothing reached the downstream while its circuit was open, and nothing bypassed the breaker.
            Assert.Equal(0, host.LetThroughWhileOpen);
            Assert.Equal(0, host.ProbesOverLimit);
            Assert.Equal(0, host.UnknownArrivals);

            // Every expected transition happened, and the circuit ends closed after the recovery.
            Assert.True(host.Count(CircuitState.Closed, CircuitState.Open) >= 1, $"{host.Service}: never opened");
            Assert.True(host.Count(CircuitState.Open, CircuitState.HalfOpen) >= 1, $"{host.Service}: never half-open");
            Assert.True(host.Count(CircuitState.HalfOpen, CircuitState.Closed) >= 1, $"{host.Service}: never closed again");
            Assert.Equal(CircuitState.Closed, host.FinalState);
        }

        // users has a degraded response configured, orders does not: its uncached calls get CircuitOpenException.
        Assert.True(summary.Host("users").Client.Degraded > 0);
        Assert.Equal(0, summary.Host("users").Client.Rejected);
        Assert.Equal(0, summary.Host("orders").Client.Degraded);

        // The plain output: phases, transitions and the summary table, without escape codes.
        Assert.Contains("phase 1: steady", text, StringComparison.Ordinal);
        Assert.Contains("circuit users   Closed -> Open", text, StringComparison.Ordinal);
        Assert.Contains("requests sent", text, StringComparison.Ordinal);
        Assert.Contains("ok     every request accounted for exactly once", text, StringComparison.Ordinal);
        Assert.DoesNotContain("\u001b[", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BadOption_ExitsWithUsageError()
    {
        using var output = new StringWriter();

        var result = await DemoProgram.ExecuteAsync(["--duration", "soon"], output, CancellationToken.None);

        Assert.Equal(2, result.ExitCode);
        Assert.Null(result.Summary);
        Assert.Contains("--duration takes a number of seconds", output.ToString(), StringComparison.Ordinal);
    }
}
