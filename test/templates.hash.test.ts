/**
 * guid() and uniqueString() against vectors published by others (never vectors of our own code).
 * Each vector says where it was published.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { armGuid, uniqueString } from '../src/control/templates/hash.js';

describe('uniqueString (ARM MurmurHash64 + base-32)', () => {
  test('a value ARM produced in a real deployment', () => {
    // microsoft/commercial-marketplace-offer-deploy, test/Tests/UnitTests/ArmFunctionsTests.cs
    // ("UniqueStringShouldEqualValueCreatedFromArmTemplate": a resource id taken from an ARM output
    // and the uniqueString ARM returned for it). An earlier revision of the same test
    // (test/Tests/ArmFunctionsTests.cs) had 'yeygmhukyx3qg', which the project later corrected.
    assert.equal(
      uniqueString(['/subscriptions/31e9f9a0-9fd2-4294-a0a3-0101246d9700/resourceGroups/rg-modm201-20230913120256/providers/Microsoft.Compute/virtualMachines/bobjacmodm201']),
      'yvjxno3je5on2',
    );
  });

  test("Microsoft's Azure.Deployments.Expression package, run locally", () => {
    // README of a tool that calls Microsoft's own Azure.Deployments.Expression NuGet package
    // ("ARM uniqueString Function that runs locally": `./out/uniqueString test` → rbgf3xv4ufgzg);
    // the same value is asserted by cloud-maker-ai/terraform-provider-arm2tf,
    // internal/provider/resource_unique_string_test.go.
    assert.equal(uniqueString(['test']), 'rbgf3xv4ufgzg');
  });

  test("Azure's own Terraform provider (azapi) unique_string function", () => {
    // Azure/terraform-provider-azapi, internal/services/functions/unique_string_function_test.go
    assert.equal(uniqueString(['/subscriptions/00000000-0000-0000-0000-000000000000', 'resource-id']), 'cwvxuqg24sifi');
  });

  test('vectors "verified against Bicep uniqueString() output" by a shell reimplementation', () => {
    // uniquestring.sh ("Replicates the Bicep/ARM uniqueString() function exactly … Self-test:
    // verified against Bicep uniqueString() output"), found with the code search as
    // "uniquestring.sh — Azure ARM/Bicep uniqueString() in pure bash". Covers 1–7 byte tails.
    assert.equal(uniqueString(['hello', 'world']), 'a7wkljktk6wne');
    assert.equal(uniqueString(['abc']), 'cgtzqvhu4i23s');
    assert.equal(uniqueString(['/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/my-rg']), 'bmg7c6xu4tw46');
    assert.equal(uniqueString(['foo', 'bar', 'baz']), 'xzi4ioaxtmth4');
  });

  test('13 characters of a-z2-7, case-sensitive input, arguments joined with "-"', () => {
    assert.match(uniqueString(['x']), /^[a-z2-7]{13}$/);
    assert.notEqual(uniqueString(['ABC']), uniqueString(['abc']));
    assert.equal(uniqueString(['a', 'b']), uniqueString(['a-b']));
  });
});

describe('guid (UUID v5 in ARM\'s namespace)', () => {
  test('a published reimplementation vector', () => {
    // cloud-maker-ai/terraform-provider-arm2tf, internal/provider/resource_guid_test.go
    // (TestAccResourceGuid_Single_Value_Is_Correct: input ["test"]). Its multi-value vector joins
    // the arguments with "" where ARM joins them with "-", so it is not used here.
    assert.equal(armGuid(['test']), 'd6a5baf1-8b9b-542a-8525-2982f1f98a0c');
  });

  test('arguments are joined with "-" (as ARM documents), version 5, RFC 4122 variant', () => {
    assert.equal(armGuid(['a', 'b', 'c']), armGuid(['a-b-c']));
    assert.notEqual(armGuid(['a', 'b']), armGuid(['ab']));
    assert.match(armGuid(['anything']), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  });
});
