using System.Text;
using System.Text.RegularExpressions;
using CircuitBreaker.Http.Redis;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace CircuitBreaker.Http.Tests.Options;

/// <summary>
/// Every <c>json</c> block of README.md binds and validates: the library reports unknown keys and wrong shapes, so a
/// block that drifted from the options would stop the host of anyone who copied it.
/// </summary>
public sealed partial class ReadmeConfigurationTests
{
    public static TheoryData<int> Blocks => [.. Enumerable.Range(0, JsonBlocks().Count)];

    [Fact]
    public void Readme_HasTheConfigurationBlocksItShows()
    {
        // Quick start, fallback, fleet mode.
        Assert.True(JsonBlocks().Count >= 3, $"README.md has {JsonBlocks().Count} json blocks");
    }

    [Theory]
    [MemberData(nameof(Blocks))]
    public void ReadmeJsonBlock_BindsAndValidates(int index)
    {
        var block = JsonBlocks()[index];
        // The fleet block is shown as the CircuitBreaker property of appsettings.json, without the braces around it.
        var json = block.TrimStart().StartsWith('"') ? "{" + block + "}" : block;
        using var stream = new MemoryStream(Encoding.UTF8.GetBytes(json));
        var configuration = new ConfigurationBuilder().AddJsonStream(stream).Build();
        var collection = new ServiceCollection().AddSingleton<IConfiguration>(configuration);
        var users = collection.AddHttpClient("users").AddCircuitBreaker();
        var fleet = configuration.GetSection("CircuitBreaker:Fleet").Exists();
        if (fleet)
        {
            users.AddRedisCoordination();
        }

        using var services = collection.BuildServiceProvider();

        var monitor = services.GetRequiredService<IOptionsMonitor<CircuitBreakerOptions>>();
        _ = monitor.Get("users");
        _ = monitor.Get(Microsoft.Extensions.Options.Options.DefaultName);
        if (fleet)
        {
            _ = services.GetRequiredService<IOptions<RedisCoordinationOptions>>().Value;
        }
    }

    private static List<string> JsonBlocks() =>
        [.. JsonBlock().Matches(File.ReadAllText(ReadmePath())).Select(m => m.Groups[1].Value)];

    [GeneratedRegex("```json\\r?\\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex JsonBlock();

    private static string ReadmePath()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "CircuitBreaker.Http.sln")))
            {
                return Path.Combine(dir.FullName, "README.md");
            }
        }

        throw new InvalidOperationException("The repository root (CircuitBreaker.Http.sln) was not found above " + AppContext.BaseDirectory);
    }
}
