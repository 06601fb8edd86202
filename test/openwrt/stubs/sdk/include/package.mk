# Test stand-in for the OpenWrt buildroot's include/package.mk. BuildPackage gives targets:
#   info     prints the package metadata (from the Package/<name> block)
#   prepare  Build/Prepare      compile  Build/Compile (after prepare)
#   install  Package/<name>/install into $(DEST)
PKG_BUILD_DIR ?= $(BUILD_DIR)/$(PKG_NAME)$(if $(PKG_VERSION),-$(PKG_VERSION))

define BuildPackage
$$(eval $$(Package/$(1)))
info:
	@echo 'PKG_NAME=$(PKG_NAME)'
	@echo 'PKG_VERSION=$(PKG_VERSION)'
	@echo 'PKG_RELEASE=$(PKG_RELEASE)'
	@echo 'SECTION=$$(SECTION)'
	@echo 'DEPENDS=$$(DEPENDS)'
	@echo 'CONFFILES=$$(strip $$(Package/$(1)/conffiles))'
prepare:
	$$(Build/Prepare)
compile: prepare
	$$(Build/Configure)
	$$(Build/Compile)
install:
	$$(call Package/$(1)/install,$$(DEST))
endef
