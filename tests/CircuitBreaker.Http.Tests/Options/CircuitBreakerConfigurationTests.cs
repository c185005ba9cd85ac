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

    private static CircuitBreakerOptions Bind(string clientName, Dictionary<string, string?> settings)
    {
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        var options = new CircuitBreakerOptions();
        new CircuitBreakerConfiguration(clientName: null, configuration.GetSection("CircuitBreaker")).Configure(clientName, options);
        return options;
    }
}
