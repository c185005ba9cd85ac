using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using RichardSzalay.MockHttp;

namespace CircuitBreaker.Http.Tests.Options;

public sealed class CircuitBreakerOptionsValidatorTests
{
    private readonly CircuitBreakerOptionsValidator _validator = new();

    public static TheoryData<string, Action<CircuitBreakerOptions>> InvalidOptions => new()
    {
        { nameof(CircuitBreakerOptions.FailureThreshold), o => o.FailureThreshold = -1 },
        { nameof(CircuitBreakerOptions.FailureRatio), o => o.FailureRatio = -0.1 },
        { nameof(CircuitBreakerOptions.FailureRatio), o => o.FailureRatio = 1.5 },
        { nameof(CircuitBreakerOptions.MinimumThroughput), o => o.MinimumThroughput = 0 },
        { nameof(CircuitBreakerOptions.SamplingDuration), o => o.SamplingDuration = TimeSpan.Zero },
        { nameof(CircuitBreakerOptions.BreakDuration), o => o.BreakDuration = TimeSpan.Zero },
        { nameof(CircuitBreakerOptions.BreakDuration), o => o.BreakDuration = TimeSpan.FromSeconds(-1) },
        { nameof(CircuitBreakerOptions.BreakDurationMultiplier), o => o.BreakDurationMultiplier = 0.5 },
        { nameof(CircuitBreakerOptions.MaxBreakDuration), o => o.MaxBreakDuration = TimeSpan.Zero },
        { nameof(CircuitBreakerOptions.HalfOpenProbes), o => o.HalfOpenProbes = 0 },
        { nameof(CircuitBreakerOptions.AttemptTimeout), o => o.AttemptTimeout = TimeSpan.Zero },
        { nameof(CircuitBreakerOptions.AttemptTimeout), o => o.AttemptTimeout = TimeSpan.FromMilliseconds((double)uint.MaxValue) },
        { nameof(CircuitBreakerOptions.SlowCallDuration), o => o.SlowCallDuration = TimeSpan.FromSeconds(-5) },
        { nameof(CircuitBreakerOptions.FailureStatusCodes), o => o.FailureStatusCodes = "5xx,700" },
        { nameof(CircuitBreakerOptions.FailureStatusCodes), o => o.FailureStatusCodes = "" },
        { nameof(CircuitBreakerOptions.MaxCircuits), o => o.MaxCircuits = 0 },
        { nameof(CircuitBreakerOptions.MaxCircuits), o => { o.MaxCircuits = 1; o.Fallback.AlternateBaseAddress = new Uri("http://backup.internal"); } },
        { nameof(CircuitBreakerOptions.MaxCircuits), o => { o.MaxCircuits = 1; o.Hosts["users.internal"] = new() { Fallback = { AlternateBaseAddress = new Uri("http://backup.internal") } }; } },
    };

    [Fact]
    public void Validate_Defaults_Succeeds() =>
        Assert.True(_validator.Validate("users", new CircuitBreakerOptions()).Succeeded);

    [Theory]
    [MemberData(nameof(InvalidOptions))]
    public void Validate_InvalidValue_FailsNamingTheKey(string key, Action<CircuitBreakerOptions> breakIt)
    {
        var options = new CircuitBreakerOptions();
        breakIt(options);

        var result = _validator.Validate("users", options);

        Assert.True(result.Failed);
        Assert.Contains($"CircuitBreaker:{key}", result.FailureMessage, StringComparison.Ordinal);
        Assert.StartsWith("Client 'users': ", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_DefaultClient_NamesTheKeyWithoutAClient()
    {
        var result = _validator.Validate(Microsoft.Extensions.Options.Options.DefaultName, new CircuitBreakerOptions { FailureThreshold = -1 });

        Assert.Contains("CircuitBreaker:FailureThreshold", result.FailureMessage, StringComparison.Ordinal);
        Assert.DoesNotContain("Client '", result.FailureMessage, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null)]
    [InlineData(-1)]
    public void Validate_AttemptTimeoutOff_Succeeds(int? milliseconds)
    {
        var options = new CircuitBreakerOptions { AttemptTimeout = milliseconds is { } ms ? TimeSpan.FromMilliseconds(ms) : null };

        Assert.True(_validator.Validate("users", options).Succeeded);
    }

    [Fact]
    public async Task AttemptTimeout_TheLongestAllowed_StartsAndEndsARealCall()
    {
        // The attempt's timer takes the timeout as it is: the validator's limit must be one the system clock's timer accepts.
        var options = new CircuitBreakerOptions { AttemptTimeout = TimeSpan.FromMilliseconds(uint.MaxValue - 1.0) };
        Assert.True(_validator.Validate("users", options).Succeeded);

        using var downstream = new MockHttpMessageHandler();
        downstream.When("*").Respond(HttpStatusCode.OK);
        var services = new ServiceCollection();
        services.AddHttpClient("users")
            .AddCircuitBreaker(o => o.AttemptTimeout = options.AttemptTimeout)
            .ConfigurePrimaryHttpMessageHandler(() => downstream);
        using var provider = services.BuildServiceProvider();
        using var client = provider.GetRequiredService<IHttpClientFactory>().CreateClient("users");

        using var response = await client.GetAsync(new Uri("http://users.test/"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public void Validate_OneCircuitWithoutAnAlternate_Succeeds() =>
        Assert.True(_validator.Validate("users", new CircuitBreakerOptions { MaxCircuits = 1 }).Succeeded);

    [Fact]
    public async Task Validate_OneCircuitWithAnAlternate_FailsNamingMaxCircuits_AndTwoKeepTheOpenCircuit()
    {
        // Why validation refuses it: the alternate's circuit takes the only slot, evicting the open circuit whose calls
        // it answers, so the next call finds a fresh closed circuit and goes to the broken host again.
        var options = new CircuitBreakerOptions { MaxCircuits = 1, FailureThreshold = 1 };
        options.Fallback.AlternateBaseAddress = new Uri("http://backup.test");

        var result = _validator.Validate("users", options);

        Assert.True(result.Failed);
        Assert.Contains("CircuitBreaker:MaxCircuits", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("AlternateBaseAddress", result.FailureMessage, StringComparison.Ordinal);

        using var harness = new TestSupport.BreakerHarness(o =>
        {
            o.MaxCircuits = 2;
            o.FailureThreshold = 1;
            o.Fallback.AlternateBaseAddress = new Uri("http://backup.test");
        });
        var primaryCalls = 0;
        harness.Mock.When("http://users.test/*").Respond(_ =>
        {
            primaryCalls++;
            return new HttpResponseMessage(HttpStatusCode.ServiceUnavailable);
        });
        harness.Mock.When("http://backup.test/*").Respond(HttpStatusCode.OK);
        using var client = harness.CreateClient();
        for (var i = 0; i < 10; i++)
        {
            (await client.GetAsync(new Uri("http://users.test/a"))).Dispose();
        }

        Assert.Equal(1, primaryCalls); // with the smallest MaxCircuits now allowed, only the call that opened the circuit
    }

    [Fact]
    public void Validate_OneHostWrittenInUnicodeAndInPunycode_FailsNamingBothKeys()
    {
        // As when the shared section writes the host one way and a client's overlay the other.
        var options = new CircuitBreakerOptions();
        options.Hosts["bücher.example"] = new CircuitBreakerHostOptions { FailureThreshold = 2 };
        options.Hosts["xn--bcher-kva.example"] = new CircuitBreakerHostOptions { BreakDuration = TimeSpan.FromSeconds(5) };

        var result = _validator.Validate("users", options);

        Assert.True(result.Failed);
        Assert.Contains("'bücher.example' and 'xn--bcher-kva.example' are the same host", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("CircuitBreaker:Hosts:bücher.example", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_InvalidHostOverride_FailsNamingTheHostKey()
    {
        var options = new CircuitBreakerOptions();
        options.Hosts["users.internal"] = new CircuitBreakerHostOptions { HalfOpenProbes = 0 };

        var result = _validator.Validate("users", options);

        Assert.True(result.Failed);
        Assert.Contains("CircuitBreaker:Hosts:users.internal:HalfOpenProbes", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_InvalidClientValue_IsNotBlamedOnHostOverridesThatDoNotSetIt()
    {
        // Each host is checked with the client's options under it, so a client's mistake would otherwise come back once
        // per host, under keys such as CircuitBreaker:Hosts:users.internal.HalfOpenProbes that the operator never wrote.
        var options = new CircuitBreakerOptions { HalfOpenProbes = 0 };
        options.Hosts["users.internal"] = new CircuitBreakerHostOptions { FailureThreshold = 2 };
        options.Hosts["orders.internal"] = new CircuitBreakerHostOptions { BreakDuration = TimeSpan.FromSeconds(5) };

        var result = _validator.Validate("users", options);

        var failure = Assert.Single(result.Failures ?? []);
        Assert.Contains("The field CircuitBreaker:HalfOpenProbes must be between 1 and 1000", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_InvalidClientValueAndInvalidHostValue_ReportsEachUnderItsOwnKey()
    {
        var options = new CircuitBreakerOptions { HalfOpenProbes = 0 };
        options.Hosts["users.internal"] = new CircuitBreakerHostOptions { BreakDuration = TimeSpan.Zero };

        var result = _validator.Validate("users", options);

        Assert.Equal(2, result.Failures?.Count());
        Assert.Contains("CircuitBreaker:HalfOpenProbes", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("CircuitBreaker:Hosts:users.internal:BreakDuration", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_HostOverrideSettingTheSameInvalidKeyAsTheClient_IsReportedForTheHostToo()
    {
        // Both values are out of range, with one message: the host's own mistake must not wait until the client's is fixed.
        var options = new CircuitBreakerOptions { HalfOpenProbes = 0 };
        options.Hosts["users.internal"] = new CircuitBreakerHostOptions { HalfOpenProbes = 5000 };

        var result = _validator.Validate("users", options);

        Assert.Equal(2, result.Failures?.Count());
        Assert.Contains("CircuitBreaker:HalfOpenProbes", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains("CircuitBreaker:Hosts:users.internal:HalfOpenProbes", result.FailureMessage, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_HostOverrideThatMakesTheClientOptionsInvalid_FailsNamingTheHostKey()
    {
        // Valid alone, invalid together: a body for this host, with no ContentType at either level.
        var options = new CircuitBreakerOptions();
        options.Hosts["users.internal"] = new CircuitBreakerHostOptions();
        options.Hosts["users.internal"].Fallback.Degraded.Body = "[]";

        var result = _validator.Validate("users", options);

        var failure = Assert.Single(result.Failures ?? []);
        Assert.Contains("CircuitBreaker:Hosts:users.internal:Fallback:Degraded:ContentType", failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Validate_HostOverrideIsLaidOverTheClientOptions()
    {
        // The client's own value is valid only together with the override, which is what runs for that host.
        var options = new CircuitBreakerOptions();
        options.Hosts["users.internal"] = new CircuitBreakerHostOptions { FailureStatusCodes = "5xx,408" };

        Assert.True(_validator.Validate("users", options).Succeeded);
    }

    [Theory]
    [InlineData("")]
    [InlineData("http://users.internal")]
    public void Validate_HostKeyThatIsNotAHost_Fails(string host)
    {
        var options = new CircuitBreakerOptions();
        options.Hosts[host] = new CircuitBreakerHostOptions();

        var result = _validator.Validate("users", options);

        Assert.True(result.Failed);
        Assert.Contains("Hosts", result.FailureMessage, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("users.internal:8443", "write users.internal")]
    [InlineData("10.0.0.1:80", "write 10.0.0.1")]
    [InlineData("[::1]", "write this IPv6 address as ::1")]
    [InlineData("[::1]:8443", "write this IPv6 address as ::1")]
    [InlineData("0:0:0:0:0:0:0:1", "write this IPv6 address as ::1")]
    [InlineData("users.internal:http", "is not a host name")]
    public void Validate_HostKeySetInCodeThatNoRequestCanMatch_FailsNamingTheKey(string host, string advice)
    {
        // Configuration keys cannot hold ':', but code can, and such a key would be accepted and never apply.
        var options = new CircuitBreakerOptions();
        options.Hosts[host] = new CircuitBreakerHostOptions { FailureThreshold = 1 };

        var result = _validator.Validate("users", options);

        Assert.True(result.Failed);
        Assert.Contains($"CircuitBreaker:Hosts:{host}", result.FailureMessage, StringComparison.Ordinal);
        Assert.Contains(advice, result.FailureMessage, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("::1", "http://[::1]:8080/")]
    [InlineData("fe80::1", "http://[fe80::1]/")]
    [InlineData("2001:DB8::1", "https://[2001:db8::1]:8443/")]
    [InlineData("::ffff:10.0.0.1", "http://[::ffff:10.0.0.1]/")]
    public void Validate_IPv6HostKey_Succeeds_AndItsOverrideAppliesToRequestsToThatAddress(string host, string request)
    {
        var options = new CircuitBreakerOptions();
        options.Hosts[host] = new CircuitBreakerHostOptions { FailureThreshold = 1 };

        Assert.True(_validator.Validate("users", options).Succeeded);
        Assert.Equal(1, options.ForHost(new Uri(request).IdnHost).FailureThreshold); // how a circuit finds its override
    }

    [Fact]
    public void Validate_ReportsEveryInvalidKeyAtOnce()
    {
        var options = new CircuitBreakerOptions { FailureThreshold = -1, HalfOpenProbes = 0 };

        var result = _validator.Validate("users", options);

        Assert.Equal(2, result.Failures!.Count());
    }

    [Fact]
    public void OptionsValidationException_FromFactory_NamesKeyAndRule()
    {
        var factory = new OptionsFactory<CircuitBreakerOptions>(
            [new ConfigureNamedOptions<CircuitBreakerOptions>("users", o => o.BreakDurationMultiplier = 0.5)],
            [],
            [_validator]);

        var ex = Assert.Throws<OptionsValidationException>(() => factory.Create("users"));

        Assert.Contains("BreakDurationMultiplier", ex.Message, StringComparison.Ordinal);
        Assert.Contains("between 1 and 1000", ex.Message, StringComparison.Ordinal);
    }
}
