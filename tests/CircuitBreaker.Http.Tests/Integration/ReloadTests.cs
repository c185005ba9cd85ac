using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Testing;

namespace CircuitBreaker.Http.Tests.Integration;

/// <summary>appsettings.json edited while the app runs: new values reach existing circuits, whose state is kept.</summary>
public class ReloadTests
{
    [Fact]
    public async Task Reload_NewFailureThreshold_AppliesToAnExistingCircuit_KeepingItsFailureCount()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var settings = new AppSettingsFile("""{ "CircuitBreaker": { "FailureThreshold": 3 } }""");
        using var side = ClientSide.ForClient(settings.Root, server);
        using var client = side.CreateClient();
        server.RespondWith(500);
        await FailAsync(client);
        Assert.Equal(1, side.Circuit("users", server).ConsecutiveFailures);

        settings.Rewrite("""{ "CircuitBreaker": { "FailureThreshold": 2 } }""");

        Assert.Equal(1, side.Circuit("users", server).ConsecutiveFailures);
        await FailAsync(client);
        Assert.Equal(CircuitState.Open, side.Circuit("users", server).State);
        Assert.Equal(2, server.RequestCount);
    }

    [Fact]
    public async Task Reload_WhileOpen_KeepsTheCircuitOpen_AndTheNewValuesApplyAfterwards()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var settings = new AppSettingsFile("""{ "CircuitBreaker": { "FailureThreshold": 2, "BreakDuration": "00:00:30" } }""");
        using var side = ClientSide.ForClient(settings.Root, server);
        using var client = side.CreateClient();
        server.RespondWith(500);
        await FailAsync(client);
        await FailAsync(client);
        var before = side.Circuit("users", server);
        Assert.Equal(CircuitState.Open, before.State);

        settings.Rewrite("""{ "CircuitBreaker": { "FailureThreshold": 1, "BreakDuration": "00:01:00" } }""");

        var after = side.Circuit("users", server);
        Assert.Equal(CircuitState.Open, after.State);
        Assert.Equal(before.OpenedAt, after.OpenedAt);
        Assert.Equal(before.RetryAt, after.RetryAt);
        await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("x"));
        Assert.Equal(2, server.RequestCount);

        // The break in progress runs out as it was promised; a successful probe closes the circuit...
        side.Time.Advance(TimeSpan.FromSeconds(30));
        server.RespondWith(200, "ok");
        using (var probe = await client.GetAsync("x"))
        {
            Assert.Equal(HttpStatusCode.OK, probe.StatusCode);
        }

        // ...and from then on one failure opens it (FailureThreshold 1), for the new BreakDuration.
        server.RespondWith(500);
        await FailAsync(client);
        var open = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync("x"));
        Assert.Equal(TimeSpan.FromMinutes(1), open.RetryAfter);
    }

    [Fact]
    public async Task Reload_NewSamplingDuration_KeepsTheFailuresSampledSoFar()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var settings = new AppSettingsFile("""{ "CircuitBreaker": { "FailureThreshold": 0, "FailureRatio": 0.5, "MinimumThroughput": 4, "SamplingDuration": "00:00:30" } }""");
        using var side = ClientSide.ForClient(settings.Root, server);
        using var client = side.CreateClient();
        server.RespondWith(500);
        for (var i = 0; i < 3; i++)
        {
            await FailAsync(client);
        }

        settings.Rewrite("""{ "CircuitBreaker": { "FailureThreshold": 0, "FailureRatio": 0.5, "MinimumThroughput": 4, "SamplingDuration": "00:01:00" } }""");

        Assert.Equal(1.0, side.Circuit("users", server).FailureRatio);
        await FailAsync(client);
        Assert.Equal(CircuitState.Open, side.Circuit("users", server).State); // the fourth call, not the first of a new window
    }

    [Fact]
    public async Task Reload_WithAnInvalidValue_DoesNotThrow_KeepsTheLastValidOptions_AndLogsAnErrorNamingTheKey()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var settings = new AppSettingsFile("""{ "CircuitBreaker": { "FailureThreshold": 2 } }""");
        using var side = ClientSide.ForClient(settings.Root, server);
        using var client = side.CreateClient();
        server.RespondWith(500);
        await FailAsync(client);

        var thrown = Record.Exception(() => settings.Rewrite("""{ "CircuitBreaker": { "FailureThreshold": -1 } }"""));

        Assert.Null(thrown);
        var errors = Errors(side);
        Assert.NotEmpty(errors);
        Assert.All(errors, error =>
        {
            Assert.Equal("CircuitBreakerReloadRejected", error.Id.Name);
            Assert.Contains("FailureThreshold", error.Message, StringComparison.Ordinal);
            Assert.Contains("'users'", error.Message, StringComparison.Ordinal);
        });

        // FailureThreshold 2 is still in force (-1 would never open the circuit).
        await FailAsync(client);
        Assert.Equal(CircuitState.Open, side.Circuit("users", server).State);
    }

    [Fact]
    public async Task Reload_WithAnUnknownKey_KeepsTheLastValidOptionsWhole_UntilAValidReload()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var settings = new AppSettingsFile("""{ "CircuitBreaker": { "FailureThreshold": 3 } }""");
        using var side = ClientSide.ForClient(settings.Root, server);
        using var client = side.CreateClient();
        server.RespondWith(500);

        // A typo next to a valid change: the whole reload is rejected, not applied in part.
        var thrown = Record.Exception(() => settings.Rewrite("""{ "CircuitBreaker": { "FailureThreshold": 1, "FailureTreshold": 1 } }"""));

        Assert.Null(thrown);
        var errors = Errors(side);
        Assert.NotEmpty(errors);
        Assert.All(errors, error => Assert.Contains("CircuitBreaker:FailureTreshold", error.Message, StringComparison.Ordinal));
        await FailAsync(client);
        Assert.Equal(CircuitState.Closed, side.Circuit("users", server).State);

        settings.Rewrite("""{ "CircuitBreaker": { "FailureThreshold": 1 } }""");
        await FailAsync(client);
        Assert.Equal(CircuitState.Open, side.Circuit("users", server).State);
        Assert.Equal(errors.Count, Errors(side).Count);
    }

    [Fact]
    public async Task Reload_WhileAClientIsFirstCreated_ReachesThatClientToo()
    {
        // A client's options are read before it joins the registry's list, which a reload goes through:
        // a reload in between would miss it. The held-up Configure only widens that window, which reading options
        // always has.
        await using var server = await KestrelDownstream.StartAsync();
        using var settings = new AppSettingsFile("""{ "CircuitBreaker": { "FailureThreshold": 2 } }""");
        using var reading = new ManualResetEventSlim();
        using var goOn = new ManualResetEventSlim();
        var first = 1;
        using var side = ClientSide.Create(settings.Root, s =>
        {
            s.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress).AddCircuitBreaker();
            s.Configure<CircuitBreakerOptions>("users", _ =>
            {
                if (Interlocked.Exchange(ref first, 0) == 1)
                {
                    reading.Set();
                    goOn.Wait(TimeSpan.FromSeconds(10));
                }
            });
        });
        server.RespondWith(500);

        var creating = Task.Run(() => side.CreateClient()); // the factory builds the handler, which reads the options
        Assert.True(reading.Wait(TimeSpan.FromSeconds(10)));
        settings.Rewrite("""{ "CircuitBreaker": { "FailureThreshold": 1 } }""");
        goOn.Set();
        using var client = await creating;
        await FailAsync(client);

        Assert.Equal(CircuitState.Open, side.Circuit("users", server).State); // FailureThreshold 1, not 2
    }

    /// <remarks>
    /// One <see cref="Microsoft.Extensions.Configuration.IConfigurationRoot.Reload"/> of a JSON file raises the
    /// configuration's change token twice (once from the file provider, once from the root), and a file watcher
    /// often does too: each notification is one reload attempt, so a rejected reload may be logged more than once.
    /// </remarks>
    private static List<FakeLogRecord> Errors(ClientSide side) =>
        side.Logs.GetSnapshot().Where(r => r.Level == LogLevel.Error).ToList();

    private static async Task FailAsync(HttpClient client)
    {
        using var response = await client.GetAsync("x");
        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
    }
}
