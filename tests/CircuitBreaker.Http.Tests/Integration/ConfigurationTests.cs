using System.Net;
using CircuitBreaker.Http.Tests.TestSupport;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CircuitBreaker.Http.Tests.Integration;

/// <summary>The <c>CircuitBreaker</c> section of appsettings.json: its overlays, and its validation when the host starts.</summary>
public class ConfigurationTests
{
    [Fact]
    public async Task HostsOverride_AppliesOnlyToThatHost_AndChangesOnlyWhatItSets()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.ForClient(
            JsonConfiguration.From("""
                {
                  "CircuitBreaker": {
                    "FailureThreshold": 3,
                    "BreakDuration": "00:00:45",
                    "Hosts": { "LOCALHOST": { "FailureThreshold": 1 } }
                  }
                }
                """),
            server);
        using var client = side.CreateClient();
        server.RespondWith(500);

        // The same server, reached as localhost (override: 1 failure) and as 127.0.0.1 (the section: 3).
        using (var viaLocalhost = await client.GetAsync(new Uri(server.AddressFor("localhost"), "x")))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, viaLocalhost.StatusCode);
        }

        using (var viaIp = await client.GetAsync("x"))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, viaIp.StatusCode);
        }

        var open = await Assert.ThrowsAsync<CircuitOpenException>(() => client.GetAsync(new Uri(server.AddressFor("localhost"), "x")));
        Assert.Equal(TimeSpan.FromSeconds(45), open.RetryAfter);
        var ipCircuit = side.Circuit("users", server);
        Assert.Equal(CircuitState.Closed, ipCircuit.State);
        Assert.Equal(1, ipCircuit.ConsecutiveFailures);
        Assert.Equal(2, server.RequestCount);
    }

    [Fact]
    public async Task ClientsOverlay_AppliesOnlyToThatClient()
    {
        await using var server = await KestrelDownstream.StartAsync();
        using var side = ClientSide.Create(
            JsonConfiguration.From("""
                {
                  "CircuitBreaker": {
                    "FailureThreshold": 3,
                    "BreakDuration": "00:00:45",
                    "Clients": { "users": { "FailureThreshold": 1 } }
                  }
                }
                """),
            services =>
            {
                services.AddHttpClient("users", c => c.BaseAddress = server.BaseAddress).AddCircuitBreaker();
                services.AddHttpClient("orders", c => c.BaseAddress = server.BaseAddress).AddCircuitBreaker();
            });
        using var users = side.CreateClient("users");
        using var orders = side.CreateClient("orders");
        server.RespondWith(500);

        using (var failed = await users.GetAsync("x"))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        using (var failed = await orders.GetAsync("x"))
        {
            Assert.Equal(HttpStatusCode.InternalServerError, failed.StatusCode);
        }

        var open = await Assert.ThrowsAsync<CircuitOpenException>(() => users.GetAsync("x"));
        Assert.Equal(TimeSpan.FromSeconds(45), open.RetryAfter);
        Assert.Equal(CircuitState.Closed, side.Circuit("orders", server).State);
        Assert.Equal(1, side.Circuit("orders", server).ConsecutiveFailures);
    }

    [Theory]
    [InlineData("FailureThreshold", "-1")]
    [InlineData("FailureRatio", "1.5")]
    [InlineData("BreakDuration", "00:00:00")]
    [InlineData("BreakDurationMultiplier", "0.5")]
    [InlineData("HalfOpenProbes", "0")]
    [InlineData("AttemptTimeout", "00:00:00")]
    [InlineData("FailureStatusCodes", "5xx,999")]
    public async Task StartAsync_WithAnInvalidValue_ThrowsOptionsValidationExceptionNamingTheKey(string key, string value)
    {
        using var host = BuildHost(
            $$"""{ "CircuitBreaker": { "{{key}}": "{{value}}" } }""",
            services => services.AddHttpClient("users").AddCircuitBreaker());

        var thrown = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains(key, thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_WithAnUnknownKey_ThrowsOptionsValidationExceptionNamingTheKey()
    {
        using var host = BuildHost(
            """{ "CircuitBreaker": { "FailureTreshold": 3 } }""",
            services => services.AddHttpClient("users").AddCircuitBreaker());

        var thrown = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("CircuitBreaker:FailureTreshold", thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_WithAnInvalidValueInASectionOfTheAppsChoice_NamesTheKeyInThatSection()
    {
        using var host = BuildHost(
            """{ "Http": { "Breaker": { "Hosts": { "users.internal": { "FailureThreshold": -1 } } } } }""",
            (services, configuration) => services.AddHttpClient("users").AddCircuitBreaker(configuration.GetSection("Http:Breaker")));

        var thrown = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("Http:Breaker:Hosts:users.internal:FailureThreshold", thrown.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("CircuitBreaker:", thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_WithAnUnknownKeyInAHostOverride_ThrowsOptionsValidationExceptionNamingTheKey()
    {
        using var host = BuildHost(
            """{ "CircuitBreaker": { "Hosts": { "users.internal": { "BreakDuraton": "00:01:00" } } } }""",
            services => services.AddHttpClient("users").AddCircuitBreaker());

        var thrown = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("CircuitBreaker:Hosts:users.internal:BreakDuraton", thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_WithTheBreakerOnEveryClient_StillValidatesTheSection()
    {
        using var host = BuildHost(
            """{ "CircuitBreaker": { "SamplingDuration": "00:00:00" } }""",
            services => services.AddHttpClient().AddCircuitBreaker());

        var thrown = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("SamplingDuration", thrown.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("FailureThreshold", "-1", "Client 'users'")]
    [InlineData("FailureTreshold", "3", "CircuitBreaker:Clients:users:FailureTreshold")]
    public async Task StartAsync_WithTheBreakerOnEveryClient_ValidatesEachClientOverlayOfTheSection(string key, string value, string expected)
    {
        // The breaker for every client cannot name its clients, but the configuration names those it overlays: an invalid
        // overlay stops the host, rather than failing every call of that client once the app runs.
        using var host = BuildHost(
            $$"""{ "CircuitBreaker": { "FailureThreshold": 3, "Clients": { "users": { "{{key}}": "{{value}}" } } } }""",
            services =>
            {
                services.AddHttpClient().AddCircuitBreaker();
                services.AddHttpClient("users");
            });

        var thrown = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains(expected, thrown.Message, StringComparison.Ordinal);
        Assert.Contains(key, thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_WithTheBreakerOnEveryClientAndOnOneByName_ReportsThatClientsInvalidOverlayOnce()
    {
        using var host = BuildHost(
            """{ "CircuitBreaker": { "Clients": { "users": { "FailureThreshold": -1 } } } }""",
            services =>
            {
                services.AddCircuitBreaker();
                services.AddHttpClient("users").AddCircuitBreaker();
            });

        // One OptionsValidationException, not an AggregateException of the same failure twice.
        var thrown = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("Client 'users'", thrown.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("FailureThreshold", "-1")]
    [InlineData("FailureTreshold", "3")]
    public async Task StartAsync_WithTheBreakerOnEveryClientAndAnInvalidSharedSection_ReportsItOnceNotForEachOverlay(string key, string value)
    {
        // The shared section's own check reports the mistake; each valid overlay holds it too, and reporting it again
        // for every one of them would throw an AggregateException of the same failure, blamed on clients.
        using var host = BuildHost(
            $$"""{ "CircuitBreaker": { "{{key}}": "{{value}}", "Clients": { "users": { "BreakDuration": "00:00:10" }, "orders": { "FailureThreshold": 2 } } } }""",
            services => services.AddHttpClient().AddCircuitBreaker());

        var thrown = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains(key, thrown.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Client '", thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_WithAnOverlayWrittenInAnotherCaseThanTheClientsName_ValidatesTheClientAsCodeConfiguresIt()
    {
        // Configuration keys ignore case, option names do not: the client "Users" gets the overlay "users" and what code
        // sets for "Users", together valid.
        using var host = BuildHost(
            """{ "CircuitBreaker": { "Clients": { "users": { "MaxQueuedRequests": 10 } } } }""",
            services =>
            {
                services.AddHttpClient().AddCircuitBreaker();
                services.AddHttpClient("Users");
                services.Configure<CircuitBreakerOptions>("Users", o => o.MaxConcurrentRequests = 5);
            });

        await host.StartAsync();

        var options = host.Services.GetRequiredService<IOptionsMonitor<CircuitBreakerOptions>>().Get("Users");
        Assert.Equal((5, 10), (options.MaxConcurrentRequests, options.MaxQueuedRequests));
        await host.StopAsync();
    }

    [Fact]
    public async Task InvalidOptionsOfAClientKnownOnlyAtRunTime_FailWhenThatClientIsFirstUsed()
    {
        using var host = BuildHost(
            """{ "CircuitBreaker": { "FailureThreshold": 3 } }""",
            services =>
            {
                services.AddHttpClient().AddCircuitBreaker();
                services.Configure<CircuitBreakerOptions>("users", o => o.FailureThreshold = -1); // no overlay names it
            });

        await host.StartAsync();
        var factory = host.Services.GetRequiredService<IHttpClientFactory>();
        using var orders = factory.CreateClient("orders");

        using var users = factory.CreateClient("users");
        var thrown = await Assert.ThrowsAsync<OptionsValidationException>(() => users.GetAsync(new Uri("http://127.0.0.1:1/")));

        Assert.Contains("Client 'users'", thrown.Message, StringComparison.Ordinal);
        Assert.Contains("FailureThreshold", thrown.Message, StringComparison.Ordinal);
        await host.StopAsync();
    }

    [Fact]
    public async Task StartAsync_WithAValidSection_Starts()
    {
        using var host = BuildHost(
            """{ "CircuitBreaker": { "FailureThreshold": 3, "AttemptTimeout": "00:00:02", "Clients": { "users": { "HalfOpenProbes": 2 } } } }""",
            services => services.AddHttpClient("users").AddCircuitBreaker());

        await host.StartAsync();
        await host.StopAsync();
    }

    private static IHost BuildHost(string json, Action<IServiceCollection> addClients) =>
        BuildHost(json, (services, _) => addClients(services));

    private static IHost BuildHost(string json, Action<IServiceCollection, IConfiguration> addClients)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddConfiguration(JsonConfiguration.From(json));
        addClients(builder.Services, builder.Configuration);
        return builder.Build();
    }
}
