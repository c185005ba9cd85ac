using Microsoft.Extensions.Options;

namespace CircuitBreaker.Http.Redis;

/// <summary>Validates fleet options at start-up; messages name the key (<c>CircuitBreaker:Fleet:Quorum</c>), as the core's do.</summary>
internal sealed class RedisCoordinationOptionsValidator : IValidateOptions<RedisCoordinationOptions>
{
    private const string Path = "CircuitBreaker:Fleet";

    private readonly RedisCoordinationOptionsDataValidator _dataValidator = new();

    public ValidateOptionsResult Validate(string? name, RedisCoordinationOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        var builder = new ValidateOptionsResultBuilder();
        builder.AddResult(ConfigurationKeyPath.Of(_dataValidator.Validate(Path, options), Path));
        if (!QuorumRule.TryParse(options.Quorum, out _))
        {
            builder.AddError(
                $"'{options.Quorum}' is not a quorum: write a count of instances such as \"3\" or a percentage of the live ones such as \"30%\"",
                $"{Path}:{nameof(RedisCoordinationOptions.Quorum)}");
        }

        if (!string.IsNullOrWhiteSpace(options.ConnectionString))
        {
            try
            {
                _ = StackExchange.Redis.ConfigurationOptions.Parse(options.ConnectionString);
            }
            catch (ArgumentException ex)
            {
                builder.AddError($"is not a StackExchange.Redis configuration string ({ex.Message})", $"{Path}:{nameof(RedisCoordinationOptions.ConnectionString)}");
            }
        }

        if (options.InstanceExpiry <= options.HeartbeatInterval)
        {
            builder.AddError(
                $"must be longer than HeartbeatInterval ({options.HeartbeatInterval}), or live instances would expire between their heartbeats",
                $"{Path}:{nameof(RedisCoordinationOptions.InstanceExpiry)}");
        }

        return builder.Build();
    }
}

[OptionsValidator]
internal sealed partial class RedisCoordinationOptionsDataValidator : IValidateOptions<RedisCoordinationOptions>;
