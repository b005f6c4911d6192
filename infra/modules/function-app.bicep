// A Flex Consumption (FC1) Linux Function App on Node 22, running as one user-assigned identity:
// the deployment package is pulled from a blob container with that identity, and Key Vault
// references are resolved with it too. The app settings are built in main.bicep, next to the
// resources they point at.

import { stringMap } from '../types.bicep'

param name string
param planName string
param location string
param tags stringMap = {}

param identityId string

@description('The blob container the deployment package is uploaded to, e.g. https://acct.blob.core.windows.net/app-package.')
param deploymentContainerUrl string

@description('App settings, name to value.')
param appSettings stringMap

@description('Most instances the app scales out to (Flex Consumption allows 1 to 1000).')
@minValue(1)
@maxValue(1000)
param maximumInstanceCount int = 100

@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@allowed(['key', 'key+entra', 'entra'])
@description('key: no App Service Authentication; key+entra: callers may sign in; entra: they must (the app refuses them otherwise).')
param callerAuth string = 'key'

@description('Client id of the app registration callers sign in to; used unless callerAuth is key.')
param authClientId string = ''

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  // azd finds the deployment target by this tag.
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identityId}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    // Without this, Key Vault references look for a system-assigned identity the app does not have.
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      ftpsState: 'Disabled'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: deploymentContainerUrl
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'node'
        version: '22'
      }
    }
  }
}

resource settings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: site
  name: 'appsettings'
  properties: appSettings
}

// App Service Authentication (Easy Auth) for callers: it checks Entra ID tokens for the app
// registration, refuses invalid ones, and sets the X-MS-CLIENT-PRINCIPAL* headers (stripping any a
// caller sent), which the app then trusts (CALLER_AUTH). Requests without a token still reach the
// app in both modes: job links (which Power Automate follows without headers), the Event Grid
// webhook and the health probe must, and with entra the app itself refuses the rest unsigned.
resource authSettings 'Microsoft.Web/sites/config@2024-04-01' = if (callerAuth != 'key') {
  parent: site
  name: 'authsettingsV2'
  properties: {
    platform: { enabled: true }
    globalValidation: {
      requireAuthentication: false
      unauthenticatedClientAction: 'AllowAnonymous'
    }
    identityProviders: {
      azureActiveDirectory: {
        enabled: true
        registration: {
          clientId: authClientId
          openIdIssuer: '${environment().authentication.loginEndpoint}${tenant().tenantId}/v2.0'
        }
        validation: {
          allowedAudiences: ['api://${authClientId}', authClientId]
        }
      }
    }
    login: {
      tokenStore: { enabled: false }
    }
  }
}

// azd deploys with Entra tokens; nothing needs publishing passwords.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: { allow: false }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: { allow: false }
}

output name string = site.name
output defaultHostName string = site.properties.defaultHostName
