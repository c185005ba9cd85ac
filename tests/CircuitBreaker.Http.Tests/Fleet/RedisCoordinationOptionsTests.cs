using CircuitBreaker.Http.Redis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CircuitBreaker.Http.Tests.Fleet;

public sealed class RedisCoordinationOptionsTests
{
    [Fact]
    public void FleetSection_IsBoundOntoTheOptions()
    {
        using var services = Build(
            ("CircuitBreaker:Fleet:ConnectionString", "redis.internal:6379"),
            ("CircuitBreaker:Fleet:Quorum", "30%"),
            ("CircuitBreaker:Fleet:ProbeWait", "00:00:12"));

        var options = services.GetRequiredService<IOptions<RedisCoordinationOptions>>().Value;

        Assert.Equal("redis.internal:6379", options.ConnectionString);
        Assert.Equal("30%", options.Quorum);
        Assert.Equal(TimeSpan.FromSeconds(12), options.ProbeWait);
        Assert.Equal("circuitbreaker", options.KeyPrefix); // untouched keys keep their defaults
    }

    [Fact]
    public void FleetSection_WithAnUnknownKey_FailsNamingTheKey()
    {
        using var services = Build(("CircuitBreaker:Fleet:ConnectionString", "redis:6379"), ("CircuitBreaker:Fleet:Quorom", "3"));

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<RedisCoordinationOptions>>().Value);

        Assert.Contains("CircuitBreaker:Fleet:Quorom: unknown configuration key 'Quorom'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FleetSection_WithABareNumberAsDuration_FailsInsteadOfReadingDays()
    {
        using var services = Build(("CircuitBreaker:Fleet:ConnectionString", "redis:6379"), ("CircuitBreaker:Fleet:ProbeWait", "30"));

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<RedisCoordinationOptions>>().Value);

        Assert.Contains("CircuitBreaker:Fleet:ProbeWait", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FleetSection_WrittenAsASingleValue_FailsNamingTheShape()
    {
        // "Fleet": "redis:6379" reads as a connection string to its writer; the binder would ignore it, and the only
        // complaint left would be that ConnectionString is missing.
        using var services = Build(("CircuitBreaker:Fleet", "redis:6379"));

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<RedisCoordinationOptions>>().Value);

        Assert.Contains("CircuitBreaker:Fleet: expects an object of keys, not the value 'redis:6379'", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void FleetDuration_NullOrEmpty_FailsInsteadOfKeepingTheDefault(string? value)
    {
        // As in the breaker's own section: the binder would keep the default for null, without a word.
        using var services = Build(("CircuitBreaker:Fleet:ConnectionString", "redis:6379"), ("CircuitBreaker:Fleet:ProbeWait", value!));

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<RedisCoordinationOptions>>().Value);

        Assert.Contains("CircuitBreaker:Fleet:ProbeWait: expects a value, not null or empty; remove the key to keep the default.", error.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("0")]
    [InlineData("-1")]
    [InlineData("two")]
    [InlineData("0%")]
    [InlineData("150%")]
    [InlineData("")]
    public void Quorum_Invalid_FailsNamingTheKey(string quorum)
    {
        using var services = Build(("CircuitBreaker:Fleet:ConnectionString", "redis:6379"), ("CircuitBreaker:Fleet:Quorum", quorum));

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<RedisCoordinationOptions>>().Value);

        Assert.Contains("CircuitBreaker:Fleet:Quorum", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ConnectionString_Missing_FailsNamingTheKey()
    {
        using var services = Build();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<RedisCoordinationOptions>>().Value);

        Assert.Contains("CircuitBreaker:Fleet:ConnectionString", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ConnectionString_NotAConfigurationString_FailsNamingTheKey()
    {
        using var services = Build(("CircuitBreaker:Fleet:ConnectionString", "redis:6379,retries=lots"));

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<RedisCoordinationOptions>>().Value);

        Assert.Contains("CircuitBreaker:Fleet:ConnectionString", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void InstanceExpiry_NotLongerThanTheHeartbeat_Fails()
    {
        using var services = Build(
            ("CircuitBreaker:Fleet:ConnectionString", "redis:6379"),
            ("CircuitBreaker:Fleet:HeartbeatInterval", "00:00:05"),
            ("CircuitBreaker:Fleet:InstanceExpiry", "00:00:05"));

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptions<RedisCoordinationOptions>>().Value);

        Assert.Contains("CircuitBreaker:Fleet:InstanceExpiry", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FleetSection_WithTheRedisPackage_IsNotAnUnknownKeyOfTheBreakerOptions()
    {
        using var services = Build(("CircuitBreaker:FailureThreshold", "4"), ("CircuitBreaker:Fleet:ConnectionString", "redis:6379"));

        var options = services.GetRequiredService<IOptionsMonitor<CircuitBreakerOptions>>().Get("users");

        Assert.Equal(4, options.FailureThreshold);
    }

    [Fact]
    public void FleetSection_WithoutTheRedisPackage_IsAnUnknownKey()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection([new("CircuitBreaker:Fleet:ConnectionString", "redis:6379")])
            .Build();
        var collection = new ServiceCollection().AddSingleton<IConfiguration>(configuration);
        collection.AddHttpClient("users").AddCircuitBreaker();
        using var services = collection.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptionsMonitor<CircuitBreakerOptions>>().Get("users"));

        Assert.Contains("CircuitBreaker:Fleet: unknown configuration key 'Fleet'", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FleetKey_InAnotherSectionThanTheOneTheRedisPackageReads_IsAnErrorNamingWhereItIsRead()
    {
        // The package reads CircuitBreaker:Fleet only: a Fleet beside the breaker's options in another section would
        // be read by nobody, its Quorum silently left at the default.
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection([new("Http:Breaker:FailureThreshold", "4"), new("Http:Breaker:Fleet:Quorum", "30%")])
            .Build();
        var collection = new ServiceCollection().AddSingleton<IConfiguration>(configuration);
        collection.AddHttpClient("users")
            .AddCircuitBreaker(configuration.GetSection("Http:Breaker"))
            .AddRedisCoordination(o => o.ConnectionString = "redis:6379");
        using var services = collection.BuildServiceProvider();

        var error = Assert.Throws<OptionsValidationException>(() => services.GetRequiredService<IOptionsMonitor<CircuitBreakerOptions>>().Get("users"));

        Assert.Contains("Http:Breaker:Fleet", error.Message, StringComparison.Ordinal);
        Assert.Contains("CircuitBreaker:Fleet", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void FleetSection_BoundThroughTheSectionOverload_IsNotAnUnknownKeyOfTheBreakerOptions()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection([new("CircuitBreaker:FailureThreshold", "4"), new("CircuitBreaker:Fleet:ConnectionString", "redis:6379")])
            .Build();
        var collection = new ServiceCollection().AddSingleton<IConfiguration>(configuration);
        collection.AddHttpClient("users").AddCircuitBreaker(configuration.GetSection("CircuitBreaker")).AddRedisCoordination();
        using var services = collection.BuildServiceProvider();

        var options = services.GetRequiredService<IOptionsMonitor<CircuitBreakerOptions>>().Get("users");

        Assert.Equal(4, options.FailureThreshold);
    }

    [Theory]
    [InlineData("3", 10, 3)]
    [InlineData("1", 10, 1)]
    [InlineData("30%", 10, 3)]
    [InlineData("30%", 11, 4)]
    [InlineData("50%", 2, 2)] // a percentage never lets one instance open a circuit for the others
    [InlineData("100%", 20, 20)]
    public void QuorumRule_Required_CountsOrRoundsThePercentageUp(string quorum, int live, int required)
    {
        Assert.True(QuorumRule.TryParse(quorum, out var rule));

        Assert.Equal(required, rule.Required(live));
    }

    private static ServiceProvider Build(params (string Key, string Value)[] settings)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => new KeyValuePair<string, string?>(s.Key, s.Value)))
            .Build();
        var services = new ServiceCollection().AddSingleton<IConfiguration>(configuration);
        services.AddHttpClient("users").AddCircuitBreaker().AddRedisCoordination();
        return services.BuildServiceProvider();
    }
}
