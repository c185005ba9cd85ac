using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.Options;

namespace CircuitBreaker.Http.Tests.Options;

public sealed class CircuitBreakerConfigurationTests
{
    [Fact]
    public void Configure_BindsEveryKey()
    {
        var options = Bind("users", new()
        {
            ["CircuitBreaker:FailureThreshold"] = "7",
            ["CircuitBreaker:FailureRatio"] = "0.25",
            ["CircuitBreaker:MinimumThroughput"] = "20",
            ["CircuitBreaker:SamplingDuration"] = "00:01:00",
            ["CircuitBreaker:BreakDuration"] = "00:00:15",
            ["CircuitBreaker:BreakDurationMultiplier"] = "2.5",
            ["CircuitBreaker:MaxBreakDuration"] = "00:10:00",
            ["CircuitBreaker:HalfOpenProbes"] = "3",
            ["CircuitBreaker:AttemptTimeout"] = "00:00:02",
            ["CircuitBreaker:SlowCallDuration"] = "00:00:01",
            ["CircuitBreaker:FailureStatusCodes"] = "5xx,429",
            ["CircuitBreaker:MaxCircuits"] = "50",
            ["CircuitBreaker:Hosts:users.internal:FailureThreshold"] = "2",
        });

        Assert.Equal(7, options.FailureThreshold);
        Assert.Equal(0.25, options.FailureRatio);
        Assert.Equal(20, options.MinimumThroughput);
        Assert.Equal(TimeSpan.FromMinutes(1), options.SamplingDuration);
        Assert.Equal(TimeSpan.FromSeconds(15), options.BreakDuration);
        Assert.Equal(2.5, options.BreakDurationMultiplier);
        Assert.Equal(TimeSpan.FromMinutes(10), options.MaxBreakDuration);
        Assert.Equal(3, options.HalfOpenProbes);
        Assert.Equal(TimeSpan.FromSeconds(2), options.AttemptTimeout);
        Assert.Equal(TimeSpan.FromSeconds(1), options.SlowCallDuration);
        Assert.Equal("5xx,429", options.FailureStatusCodes);
        Assert.Equal(50, options.MaxCircuits);
        Assert.Equal(2, options.Hosts["USERS.internal"].FailureThreshold);
    }

    [Fact]
    public void Configure_ClientOverlay_AppliesOnlyToThatClient()
    {
        var settings = new Dictionary<string, string?>
        {
            ["CircuitBreaker:FailureThreshold"] = "7",
            ["CircuitBreaker:BreakDuration"] = "00:00:15",
            ["CircuitBreaker:Clients:users:FailureThreshold"] = "2",
        };

        var users = Bind("users", settings);
        var orders = Bind("orders", settings);

        Assert.Equal(2, users.FailureThreshold);
        Assert.Equal(TimeSpan.FromSeconds(15), users.BreakDuration);
        Assert.Equal(7, orders.FailureThreshold);
    }

    [Fact]
    public void Configure_HostOverride_ChangesOnlyWhatItSets()
    {
        var options = Bind("users", new()
        {
            ["CircuitBreaker:FailureThreshold"] = "7",
            ["CircuitBreaker:BreakDuration"] = "00:00:15",
            ["CircuitBreaker:Hosts:users.internal:BreakDuration"] = "00:00:05",
        });

        var forHost = options.ForHost("users.internal");
        var forOther = options.ForHost("orders.internal");

        Assert.Equal(TimeSpan.FromSeconds(5), forHost.BreakDuration);
        Assert.Equal(7, forHost.FailureThreshold);
        Assert.Equal(TimeSpan.FromSeconds(15), forOther.BreakDuration);
    }

    [Theory]
    [InlineData("CircuitBreaker:FailureTreshold", "CircuitBreaker:FailureTreshold")]
    [InlineData("CircuitBreaker:Clients:users:BreakDurration", "CircuitBreaker:Clients:users:BreakDurration")]
    [InlineData("CircuitBreaker:Hosts:users.internal:MaxCircuits", "CircuitBreaker:Hosts:users.internal:MaxCircuits")]
    [InlineData("CircuitBreaker:Hosts:users.internal:Typo", "CircuitBreaker:Hosts:users.internal:Typo")]
    public void Configure_UnknownKey_FailsNamingTheKey(string key, string expectedInMessage)
    {
        var ex = Assert.Throws<OptionsValidationException>(() => Bind("users", new() { [key] = "1" }));

        Assert.Contains(expectedInMessage, ex.Message, StringComparison.Ordinal);
        Assert.Contains("unknown configuration key", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Configure_ValueThatCannotBeConverted_FailsNamingTheKey()
    {
        var ex = Assert.Throws<OptionsValidationException>(() => Bind("users", new() { ["CircuitBreaker:FailureThreshold"] = "five" }));

        Assert.Contains("FailureThreshold", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Configure_OtherClientsOverlay_IsNotValidatedForThisClient()
    {
        var options = Bind("users", new() { ["CircuitBreaker:Clients:orders:FailureThreshold"] = "3" });

        Assert.Equal(5, options.FailureThreshold);
    }

    [Fact]
    public void Configure_ForOneClient_LeavesOtherClientsAlone()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["CircuitBreaker:FailureThreshold"] = "9" })
            .Build();
        var binder = new CircuitBreakerConfiguration("users", configuration.GetSection("CircuitBreaker"));
        var orders = new CircuitBreakerOptions();

        binder.Configure("orders", orders);

        Assert.Equal(5, orders.FailureThreshold);
    }

    [Fact]
    public void Configure_JsonNullAttemptTimeout_TurnsTheTimeoutOff()
    {
        using var json = new MemoryStream("""{ "CircuitBreaker": { "AttemptTimeout": null } }"""u8.ToArray());
        var configuration = new ConfigurationBuilder().AddJsonStream(json).Build();
        var options = new CircuitBreakerOptions();

        new CircuitBreakerConfiguration(null, configuration.GetSection("CircuitBreaker")).Configure("users", options);

        Assert.Null(options.AttemptTimeout);
    }

    [Fact]
    public void Configure_JsonNullAttemptTimeoutInTheClientsOverlay_TurnsTheTimeoutOff()
    {
        var options = BindJson("""{ "CircuitBreaker": { "Clients": { "users": { "AttemptTimeout": null } } } }""");

        Assert.Null(options.AttemptTimeout);
    }

    [Theory]
    [InlineData("""{ "Hosts": { "slow.internal": { "AttemptTimeout": null } } }""", "CircuitBreaker:Hosts:slow.internal:AttemptTimeout", "write -00:00:00.001 to turn it off")]
    [InlineData("""{ "Hosts": { "slow.internal": { "AttemptTimeout": "" } } }""", "CircuitBreaker:Hosts:slow.internal:AttemptTimeout", "write -00:00:00.001 to turn it off")]
    [InlineData("""{ "Hosts": { "slow.internal": { "SlowCallDuration": null } } }""", "CircuitBreaker:Hosts:slow.internal:SlowCallDuration", "write -00:00:00.001 to turn it off")]
    [InlineData("""{ "Hosts": { "slow.internal": { "MaxConcurrentRequests": null } } }""", "CircuitBreaker:Hosts:slow.internal:MaxConcurrentRequests", "remove the key")]
    [InlineData("""{ "Hosts": { "slow.internal": { "RampUpDuration": null } } }""", "CircuitBreaker:Hosts:slow.internal:RampUpDuration", "remove the key")]
    [InlineData("""{ "Hosts": { "slow.internal": { "FailureThreshold": null } } }""", "CircuitBreaker:Hosts:slow.internal:FailureThreshold", "remove the key")]
    [InlineData("""{ "Hosts": { "slow.internal": { "Throttle": { "PermitsPerSecond": null } } } }""", "CircuitBreaker:Hosts:slow.internal:Throttle:PermitsPerSecond", "remove the key")]
    [InlineData("""{ "Hosts": { "slow.internal": { "Fallback": { "Cache": { "MaxAge": null } } } } }""", "CircuitBreaker:Hosts:slow.internal:Fallback:Cache:MaxAge", "remove the key")]
    [InlineData("""{ "Clients": { "users": { "Hosts": { "slow.internal": { "AttemptTimeout": null } } } } }""", "CircuitBreaker:Clients:users:Hosts:slow.internal:AttemptTimeout", "write -00:00:00.001 to turn it off")]
    public void Configure_JsonNullOrEmptyInAHostOverride_FailsNamingTheKeyAndWhatToWriteInstead(string section, string key, string advice)
    {
        // A host override left null keeps the client's value, so null cannot mean "off" there as it does for the client.
        var ex = Assert.Throws<OptionsValidationException>(() => BindJson($$"""{ "CircuitBreaker": {{section}} }"""));

        Assert.Contains(key + ": null or empty in a host override", ex.Message, StringComparison.Ordinal);
        Assert.Contains(advice, ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("CircuitBreaker:AttemptTimeout", "-00:00:00.001 turns it off")]
    [InlineData("CircuitBreaker:SlowCallDuration", "-00:00:00.001 turns it off")]
    [InlineData("CircuitBreaker:Clients:users:AttemptTimeout", "-00:00:00.001 turns it off")]
    [InlineData("CircuitBreaker:Clients:users:MaxConcurrentRequests", "remove the key")]
    [InlineData("CircuitBreaker:RampUpDuration", "remove the key")]
    [InlineData("CircuitBreaker:Throttle:PermitsPerSecond", "remove the key")]
    [InlineData("CircuitBreaker:Fallback:AlternateBaseAddress", "remove the key")]
    [InlineData("CircuitBreaker:Clients:users:Fallback:Degraded:StatusCode", "remove the key")]
    public void Configure_EmptyValueOfAnOptionThatNullTurnsOff_FailsInsteadOfKeepingTheValueBelow(string key, string advice)
    {
        // An environment variable or a command-line argument cannot be null: an empty one is how it would try to turn an
        // option off, and the binder ignores it, keeping the default or the shared section's value without a word.
        var ex = Assert.Throws<OptionsValidationException>(() => Bind("users", new()
        {
            ["CircuitBreaker:AttemptTimeout"] = "00:00:05",
            ["CircuitBreaker:MaxConcurrentRequests"] = "5",
            ["CircuitBreaker:Fallback:Degraded:StatusCode"] = "503",
            [key] = "",
        }));

        Assert.Contains(key + ": an empty value", ex.Message, StringComparison.Ordinal);
        Assert.Contains(advice, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Configure_HostOverrideOfInfiniteAttemptTimeout_TurnsTheTimeoutOffForThatHostOnly()
    {
        // What the error for a null host AttemptTimeout tells the user to write instead.
        var options = BindJson("""{ "CircuitBreaker": { "Hosts": { "slow.internal": { "AttemptTimeout": "-00:00:00.001", "SlowCallDuration": "-00:00:00.001" } } } }""");

        Assert.True(new CircuitBreakerOptionsValidator().Validate("users", options).Succeeded);
        Assert.Equal(Timeout.InfiniteTimeSpan, options.ForHost("slow.internal").AttemptTimeout);
        Assert.Equal(TimeSpan.FromSeconds(10), options.ForHost("other.internal").AttemptTimeout);
    }

    [Fact]
    public void Configure_HostOverrideEmptyDegradedBody_IsEmptyText_OverridingTheClients()
    {
        // Empty text binds as empty text, so for a text option an empty string in a host override is a value of its own.
        var options = BindJson("""
            { "CircuitBreaker": { "Fallback": { "Degraded": { "StatusCode": 503, "ContentType": "text/plain", "Body": "down" } },
              "Hosts": { "quiet.internal": { "Fallback": { "Degraded": { "StatusCode": 204, "Body": "" } } } } } }
            """);

        Assert.True(new CircuitBreakerOptionsValidator().Validate("users", options).Succeeded);
        Assert.Equal(string.Empty, options.ForHost("quiet.internal").Fallback.Degraded.Body);
        Assert.Equal("down", options.ForHost("other.internal").Fallback.Degraded.Body);
    }

    [Fact]
    public void Configure_HostOverrideDegradedHeaderWithAnEmptyValue_IsAValue_NotAnError()
    {
        // Degraded headers in a host override are added to the client's, not inherited, so an empty one means an empty header.
        var options = BindJson("""{ "CircuitBreaker": { "Hosts": { "slow.internal": { "Fallback": { "Degraded": { "StatusCode": 503, "Headers": { "X-Degraded": "" } } } } } } }""");

        Assert.Equal(string.Empty, options.Hosts["slow.internal"].Fallback.Degraded.Headers["X-Degraded"]);
    }

    [Theory]
    [InlineData("false", "False")]
    [InlineData("5", "5")]
    [InlineData("\"cache\"", "cache")]
    public void Configure_SectionWrittenAsASingleValue_FailsNamingTheSection(string value, string asRead)
    {
        var ex = Assert.Throws<OptionsValidationException>(() => BindJson($$"""{ "CircuitBreaker": {{value}} }"""));

        Assert.Contains($"CircuitBreaker: expects an object of keys, not the value '{asRead}'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Configure_SectionGivenToAddCircuitBreakerWrittenAsASingleValue_FailsNamingThatSection()
    {
        using var json = new MemoryStream("""{ "Breakers": { "Users": true } }"""u8.ToArray());
        var configuration = new ConfigurationBuilder().AddJsonStream(json).Build();

        var ex = Assert.Throws<OptionsValidationException>(
            () => new CircuitBreakerConfiguration("users", configuration.GetSection("Breakers:Users")).Configure("users", new CircuitBreakerOptions()));

        Assert.Contains("Breakers:Users: expects an object of keys, not the value 'True'", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Configure_ClientsOverlayWrittenAsASingleValue_FailsOnce_NamingTheOverlay()
    {
        var ex = Assert.Throws<OptionsValidationException>(() => BindJson("""{ "CircuitBreaker": { "FailureThreshold": 2, "Clients": { "users": false } } }"""));

        Assert.Equal("CircuitBreaker:Clients:users: expects an object of keys, not the value 'False'.", Assert.Single(ex.Failures));
    }

    [Theory]
    [InlineData("{ }")]
    [InlineData("null")]
    public void Configure_EmptyOrNullSection_KeepsTheDefaults(string value)
    {
        // The JSON provider reads both as a key without a value or children, as it reads an empty object anywhere:
        // a section with nothing set, not a single value.
        var options = BindJson($$"""{ "CircuitBreaker": {{value}}, "Other": 1 }""");

        Assert.Equal(5, options.FailureThreshold);
    }

    private static CircuitBreakerOptions BindJson(string json, string clientName = "users")
    {
        using var stream = new MemoryStream(System.Text.Encoding.UTF8.GetBytes(json));
        var configuration = new ConfigurationBuilder().AddJsonStream(stream).Build();
        var options = new CircuitBreakerOptions();
        new CircuitBreakerConfiguration(clientName: null, configuration.GetSection("CircuitBreaker")).Configure(clientName, options);
        return options;
    }

    private static CircuitBreakerOptions Bind(string clientName, Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var options = new CircuitBreakerOptions();
        new CircuitBreakerConfiguration(clientName: null, configuration.GetSection("CircuitBreaker")).Configure(clientName, options);
        return options;
    }
}
