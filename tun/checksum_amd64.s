//go:build !purego

#include "textflag.h"

// func csumAVX2(p *byte, n int) uint64
//
// Sums the little-endian 16-bit words of p[0:n] as plain integers; n is a
// multiple of 64 and at most 1 MiB. Each 32-bit lane of the four
// accumulators gains at most 0xffff per 64 bytes, so after 1 MiB (16,384
// rounds) a lane holds less than 2^30 and the four add up without
// overflow; the lanes are then widened to 64 bits and summed.
TEXT ·csumAVX2(SB), NOSPLIT, $0-24
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPCMPEQD Y15, Y15, Y15
	VPSRLD $16, Y15, Y15 // 0x0000ffff in every 32-bit lane
	TESTQ CX, CX
	JZ    done

loop:
	VMOVDQU (SI), Y4
	VMOVDQU 32(SI), Y5
	VPAND   Y15, Y4, Y6
	VPSRLD  $16, Y4, Y4
	VPAND   Y15, Y5, Y7
	VPSRLD  $16, Y5, Y5
	VPADDD  Y6, Y0, Y0
	VPADDD  Y4, Y1, Y1
	VPADDD  Y7, Y2, Y2
	VPADDD  Y5, Y3, Y3
	ADDQ    $64, SI
	SUBQ    $64, CX
	JNZ     loop

done:
	VPADDD Y1, Y0, Y0
	VPADDD Y3, Y2, Y2
	VPADDD Y2, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPMOVZXDQ X0, Y2
	VPMOVZXDQ X1, Y3
	VPADDQ Y3, Y2, Y2
	VEXTRACTI128 $1, Y2, X3
	VPADDQ X3, X2, X2
	VPSHUFD $0x4e, X2, X3
	VPADDQ X3, X2, X2
	VMOVQ X2, AX
	VZEROUPPER
	MOVQ AX, ret+16(FP)
	RET
