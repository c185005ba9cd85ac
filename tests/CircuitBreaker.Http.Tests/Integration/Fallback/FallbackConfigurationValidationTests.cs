using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;

namespace CircuitBreaker.Http.Tests.Integration.Fallback;

/// <summary>An invalid <c>Fallback</c> section stops the host at start-up, with a message naming the key.</summary>
public class FallbackConfigurationValidationTests
{
    [Theory]
    [InlineData("""{ "Degraded": { "StatusCode": 700 } }""", "Degraded", "StatusCode")]
    [InlineData("""{ "Degraded": { "StatusCode": 99, "ContentType": "text/plain", "Body": "x" } }""", "Degraded", "StatusCode")]
    [InlineData("""{ "Cache": { "MaxEntryBytes": -1 } }""", "Cache", "MaxEntryBytes")]
    [InlineData("""{ "Cache": { "MaxTotalBytes": -1 } }""", "Cache", "MaxTotalBytes")]
    [InlineData("""{ "Cache": { "MaxEntries": 0 } }""", "Cache", "MaxEntries")]
    [InlineData("""{ "Cache": { "MaxAge": "00:00:00" } }""", "Cache", "MaxAge")]
    [InlineData("""{ "AlternateBaseAddress": "/backup" }""", "Fallback", "AlternateBaseAddress")]
    [InlineData("""{ "AlternateBaseAddress": "ftp://backup.internal" }""", "Fallback", "AlternateBaseAddress")]
    [InlineData("""{ "Degraded": { "Body": "{\"fallback\":true}" } }""", "Degraded", "ContentType")]
    [InlineData("""{ "Degraded": { "ContentType": "not a media type", "Body": "x" } }""", "Degraded", "ContentType")]
    [InlineData("""{ "Degraded": { "StatusCode": 503, "Headers": { "X-Circuit-Fallback": "maintenance" } } }""", "Degraded", "Headers")]
    public async Task StartAsync_WithAnInvalidFallbackValue_ThrowsOptionsValidationExceptionNamingTheKey(string fallback, string parent, string key)
    {
        using var host = BuildHost($$"""{ "CircuitBreaker": { "Fallback": {{fallback}} } }""");

        var thrown = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains($"{parent}:{key}", thrown.Message, StringComparison.Ordinal);
        Assert.Contains("Client 'users'", thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_WithAnInvalidHostFallbackValue_ThrowsOptionsValidationExceptionNamingTheHostAndKey()
    {
        using var host = BuildHost("""
            { "CircuitBreaker": { "Hosts": { "users.internal": { "Fallback": { "Degraded": { "StatusCode": 700 } } } } } }
            """);

        var thrown = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("Hosts:users.internal", thrown.Message, StringComparison.Ordinal);
        Assert.Contains("Degraded:StatusCode", thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_WithAnUnknownKeyInsideFallback_ThrowsOptionsValidationExceptionNamingTheKey()
    {
        using var host = BuildHost("""{ "CircuitBreaker": { "Fallback": { "Cache": { "Enabeld": true } } } }""");

        var thrown = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("CircuitBreaker:Fallback:Cache:Enabeld", thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_WithOnOpenInJson_ThrowsOptionsValidationException_SinceItIsCodeOnly()
    {
        using var host = BuildHost("""{ "CircuitBreaker": { "Fallback": { "OnOpen": "MyFallback" } } }""");

        var thrown = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("CircuitBreaker:Fallback:OnOpen", thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_WithMaxEntriesInAHostOverride_ThrowsOptionsValidationException_SinceItIsNotAHostKey()
    {
        using var host = BuildHost("""
            { "CircuitBreaker": { "Hosts": { "users.internal": { "Fallback": { "Cache": { "MaxEntries": 10 } } } } } }
            """);

        var thrown = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("CircuitBreaker:Hosts:users.internal:Fallback:Cache:MaxEntries", thrown.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_WithACompleteValidFallbackSection_Starts()
    {
        using var host = BuildHost("""
            {
              "CircuitBreaker": {
                "Fallback": {
                  "Cache": { "Enabled": true, "MaxAge": "00:05:00", "MaxEntries": 1000, "MaxEntryBytes": 1048576, "MaxTotalBytes": 67108864, "ExcludeRequestsWithCredentials": true },
                  "AlternateBaseAddress": "https://users-backup.internal",
                  "Degraded": { "StatusCode": 503, "ContentType": "application/json", "Body": "{\"user\":null,\"fallback\":true}", "Headers": { "X-Degraded": "1" } }
                },
                "Hosts": {
                  "users.internal": {
                    "Fallback": {
                      "Cache": { "Enabled": false, "MaxAge": "00:01:00", "MaxEntryBytes": 1024, "ExcludeRequestsWithCredentials": false },
                      "AlternateBaseAddress": "http://users-dr.internal:8080",
                      "Degraded": { "Body": "{}", "Headers": { "X-Host": "1" } }
                    }
                  }
                }
              }
            }
            """);

        await host.StartAsync();
        await host.StopAsync();
    }

    private static IHost BuildHost(string json)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddConfiguration(JsonConfiguration.From(json));
        builder.Services.AddHttpClient("users").AddCircuitBreaker();
        return builder.Build();
    }
}
